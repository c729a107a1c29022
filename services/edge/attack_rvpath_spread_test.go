package edge

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAttackSpreadRevokedAnsweredByExchangeBeforeItsTurn: with
// segmesh.edge.drainSpreadMillis (1000 in deploy/k8s since session 8) a
// held Ping waits for its batch while the edge is already not ready and
// answering the others. mallory's certificate is revoked while her Ping
// waits, and then Exchange itself answers it (new mail) before her turn
// comes: the drain's wake then finds nothing to answer. The answer must
// still go through the re-check rule (403), never
// Exchange's 200 for a revoked certificate, on every held path; her turn
// answers nothing more, and Stop returns. Attacker review rvpath, session
// 8: held on main (TestAttackSpreadRevokedWhileWaitingItsTurn covers the
// drain's own answer).
func TestAttackSpreadRevokedAnsweredByExchangeBeforeItsTurn(t *testing.T) {
	for _, tt := range heldPingPaths {
		t.Run(tt.name, func(t *testing.T) {
			waits := make(chan time.Duration, 4)
			tick := make(chan time.Time)
			h := newHarness(t, nil, options{
				tune: func(c *Config) {
					c.DrainSpread = time.Hour
					if tt.tune != nil {
						tt.tune(c)
					}
				},
				after: func(d time.Duration) <-chan time.Time {
					waits <- d
					return tick
				},
				shuffle: func(n int, swap func(i, j int)) {
					for i := range n / 2 {
						swap(i, n-1-i)
					}
				},
			})
			hd := h.heldExchange(t)
			serials := map[string]int64{"mallory": 4454, "bob": 4455}
			got := map[string]<-chan pingAnswer{}
			for i, cn := range []string{"mallory", "bob"} {
				cert := h.ca.issue(t, certOpts{cn: cn, serial: serials[cn]})
				got[cn] = h.sendPing(t, &cert, tt.h2)
				waitFor(t, cn+"'s Ping held at Exchange", func() bool { return hd.entered.Load() == int64(i+1) })
			}
			stopped := h.stopAsync(t)
			<-waits // the first batch is answered, the second waits for its tick
			var first, second string
			var a pingAnswer
			select {
			case a = <-got["mallory"]:
				first, second = "mallory", "bob"
			case a = <-got["bob"]:
				first, second = "bob", "mallory"
			}
			if a.err != nil || drainedPingOK(a.resp, a.body) != "" {
				t.Fatalf("%s's Ping in the first batch: %v %v %q", first, a.err, a.resp, a.body)
			}
			gen := h.edge.revocation.current()
			h.crl.revoke(h.ca, serials[second])
			waitFor(t, "new snapshot", func() bool { return h.edge.revocation.current() > gen })
			hd.let() // Exchange answers the Ping still held: "pong for PARK1"
			a = <-got[second]
			if a.err == nil && (a.resp.StatusCode != http.StatusForbidden || strings.Contains(a.body, "pong")) {
				t.Fatalf("%s's Ping, revoked while it waited for its turn, got Exchange's answer: %s %q, want 403", second, a.resp.Status, a.body)
			}
			select {
			case tick <- time.Time{}:
			case err := <-stopped:
				t.Fatalf("Stop returned before the second batch's turn: %v", err)
			}
			if err := <-stopped; err != nil {
				t.Fatalf("Stop: %v", err)
			}
		})
	}
}
