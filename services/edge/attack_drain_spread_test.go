package edge

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAttackSpreadRevokedWhileWaitingItsTurn: with
// segmesh.edge.drainSpreadMillis (1000 in deploy/k8s since session 8) a
// held Ping waits for its batch after the edge started answering the
// others (c12fb7a). mallory's certificate is revoked while her Ping waits
// for its turn, on every held path. Her turn must not give her the drain's
// 200 Status 1 (come straight back), nor another device's answer: the
// drain's answer goes through the re-check rule, so she gets the refusal;
// the device answered in the first batch gets its Status 1 (which of the
// two waits is not known: whichever does is revoked). Attacker review
// rvedge: held. rvpath (session 8) added the case where Exchange itself
// answers her Ping (new mail) before her turn comes, so the drain's wake
// finds nothing to answer: Exchange's answer goes through the re-check
// rule too (403, never Exchange's 200), and Stop returns. Held.
func TestAttackSpreadRevokedWhileWaitingItsTurn(t *testing.T) {
	for _, tt := range heldPingPaths {
		for _, byExchange := range []bool{false, true} {
			name := tt.name + "/the drain's answer"
			if byExchange {
				name = tt.name + "/Exchange's answer before the turn"
			}
			t.Run(name, func(t *testing.T) {
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
					// The held Pings come from maps: the order the shuffle
					// reverses is not known, so whichever Ping waits for the
					// second batch is the one revoked.
					shuffle: func(n int, swap func(i, j int)) {
						for i := range n / 2 {
							swap(i, n-1-i)
						}
					},
				})
				hd := h.heldExchange(t)
				serials := map[string]int64{"mallory": 4444, "bob": 4445}
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
				if a.err != nil {
					t.Fatalf("%s's Ping: %v", first, a.err)
				}
				if wrong := drainedPingOK(a.resp, a.body); wrong != "" {
					t.Fatalf("%s's Ping in the first batch: %s", first, wrong)
				}
				gen := h.edge.revocation.current()
				h.crl.revoke(h.ca, serials[second])
				waitFor(t, "new snapshot", func() bool { return h.edge.revocation.current() > gen })
				if byExchange {
					hd.let() // Exchange answers the Ping still held: "pong for PARK1"
				} else {
					tick <- time.Time{}
				}
				a = <-got[second]
				if a.err == nil && drainedPingOK(a.resp, a.body) == "" {
					t.Fatalf("%s's Ping, revoked while it waited for its turn, got the drain's 200 Status 1", second)
				}
				if a.err == nil && (a.resp.StatusCode != http.StatusForbidden || strings.Contains(a.body, "pong")) {
					t.Fatalf("%s's revoked Ping got %s %q, want 403", second, a.resp.Status, a.body)
				}
				if byExchange {
					select {
					case tick <- time.Time{}:
					case err := <-stopped:
						t.Fatalf("Stop returned before the second batch's turn: %v", err)
					}
				}
				if err := <-stopped; err != nil {
					t.Fatalf("Stop: %v", err)
				}
			})
		}
	}
}
