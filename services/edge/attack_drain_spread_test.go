package edge

import (
	"net/http"
	"testing"
	"time"
)

// TestAttackSpreadRevokedWhileWaitingItsTurn: with
// segmesh.edge.drainSpreadMillis a held Ping waits for its batch after the
// edge started answering the others (c12fb7a). mallory's certificate is
// revoked while her Ping waits for its turn, on every held path. Her turn
// must not give her the drain's 200 Status 1 (come straight back), nor
// another device's answer: the drain's answer goes through the re-check
// rule, so she gets the refusal; the device answered in the first batch
// gets its Status 1 (which of the two waits is not known: whichever does is
// revoked). Attacker review rvedge: held.
func TestAttackSpreadRevokedWhileWaitingItsTurn(t *testing.T) {
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
			tick <- time.Time{}
			a = <-got[second]
			if a.err == nil && drainedPingOK(a.resp, a.body) == "" {
				t.Fatalf("%s's Ping, revoked while it waited for its turn, got the drain's 200 Status 1", second)
			}
			if a.err == nil && a.resp.StatusCode != http.StatusForbidden {
				t.Fatalf("%s's revoked Ping got %s %q, want 403", second, a.resp.Status, a.body)
			}
			if err := <-stopped; err != nil {
				t.Fatalf("Stop: %v", err)
			}
		})
	}
}
