package edge

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// TestAttackHeldSyncRevokedMidHold: an EAS Sync with a Wait (or a
// HeartbeatInterval) is held at Exchange like a Ping, up to 59 minutes,
// and so is an EWS streaming subscription. A device whose certificate is
// revoked while such a request is held must not get Exchange's answer (the
// user's new mail) when it comes: the re-check the answer to a held Ping
// goes through (recheckHeld) applies to every answer, on each engine
// (net/http's reverse proxy, the relay, HTTP/2). Attacker review (review1):
// recheckHeld re-checked Pings only.
func TestAttackHeldSyncRevokedMidHold(t *testing.T) {
	const waitSync = "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=DEV1&DeviceType=iPhone"
	for _, tc := range []struct {
		name   string
		engine string
		h2     bool
	}{
		{"net/http", "net/http", false},
		{"relay", "relay", false},
		{"HTTP/2", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.engine == "relay" && !pollSupported {
				t.Skip("the relay needs pollReady (Linux)")
			}
			h := newHarness(t, func(c *config.Config) { c.Segmesh.Edge.HTTP1Engine = tc.engine }, options{})
			release := make(chan struct{})
			var entered atomic.Int64
			h.exchange.handler = func(w http.ResponseWriter, r *http.Request, _ string) {
				entered.Add(1)
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				_, _ = w.Write([]byte("new mail for alice"))
			}
			defer func() {
				select {
				case <-release:
				default:
					close(release)
				}
			}()
			cert := h.ca.issue(t, certOpts{cn: "alice", serial: 4747})
			got := h.sendHeld(t, &cert, tc.h2, waitSync, "<Sync><Wait>59</Wait></Sync>")
			waitFor(t, "the Sync held at Exchange", func() bool { return entered.Load() == 1 })
			gen := h.edge.revocation.current()
			h.crl.revoke(h.ca, 4747)
			waitFor(t, "the new snapshot at the edge", func() bool { return h.edge.revocation.current() > gen })
			close(release)
			a := <-got
			if a.err == nil && a.resp != nil && a.resp.StatusCode != http.StatusForbidden {
				t.Fatalf("the revoked device's held Sync got Exchange's answer %s %q, want 403", a.resp.Status, a.body)
			}
		})
	}
}
