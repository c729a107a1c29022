package edge

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAttackRelayOneDeviceTakesEveryConnection: a cap on the relay's
// connections per Exchange host (segmesh.edge.relayMaxConnsPerHost) counts
// connections in use, and a request holds its connection while its body
// streams from the device (a body over segmesh.edge's replay bound, 64
// KiB, or any body with KCD off, is not read first). With a cap, one
// device, mallory's, opens as many connections as the cap and trickles
// each body (IIS waits up to its entity-body timeout, 120 s, between
// bytes): every other user of that Exchange server then waits 10 s and
// gets 503 until mallory stops. With KCD and requireClientCertificate off
// (the defaults) mallory needs no certificate. So the default is no cap
// (0, as http.Transport's MaxConnsPerHost; the net/http engine has none
// either): mallory's two trickling uploads leave alice served. A cap an
// admin sets keeps this lever by construction (README, operations.md §7).
// Attacker review rvrelay; the default changed by #25d.
func TestAttackRelayOneDeviceTakesEveryConnection(t *testing.T) {
	h, x, alice := relayHarness(t, options{tune: func(c *Config) { c.RelayConnWait = 200 * time.Millisecond }})
	if h.edge.relay.max != 0 {
		t.Fatalf("the relay's default cap is %d, want none", h.edge.relay.max)
	}
	mc := h.ca.issue(t, certOpts{cn: "mallory"})
	for range 2 {
		m := h.device(t, &mc)
		if _, err := fmt.Fprintf(m.c, "POST %s HTTP/1.1\r\nHost: edge.lab.test\r\nContent-Length: %d\r\n\r\n%s", syncPath, 1<<20, strings.Repeat("a", 10)); err != nil {
			t.Fatal(err)
		}
		x.accept() // the relay holds it while the body trickles
	}
	alice.sendWith(syncPath, "", "<Sync/>")
	answered := make(chan struct{})
	defer close(answered)
	go func() {
		select {
		case c := <-x.conns:
			x.conns <- c
			up := x.accept()
			up.request()
			up.write(okAnswer("alice"))
		case <-answered:
		}
	}()
	resp, body, err := alice.read()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("alice got %v %q %v while one device trickles two uploads: every relay connection to Exchange was mallory's", resp, body, err)
	}
}
