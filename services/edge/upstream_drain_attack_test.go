package edge

import (
	"net/http"
	"testing"
)

// TestAttackDrainRevokedMidHold: a device whose certificate is revoked
// while its Ping is held at Exchange, then the edge stops (533c7d3,
// e3f066d). On every path — parked, HTTP/2, not parkable — the drain's
// answer goes through the re-check rule as Exchange's would: the device
// gets the refusal (403), not a 200 Ping Status 1 that tells it to come
// straight back. Without the drain, Exchange's own answer to a proxied
// Ping is re-checked as the parked path does (ping.recheck). Attacker
// review.
func TestAttackDrainRevokedMidHold(t *testing.T) {
	for _, tt := range heldPingPaths {
		// noStop lets Exchange answer instead of stopping the edge: the
		// same rule without the drain.
		for _, noStop := range []bool{false, true} {
			t.Run(tt.name+map[bool]string{true: ", Exchange answers"}[noStop], func(t *testing.T) {
				h := newHarness(t, nil, options{tune: tt.tune})
				hd := h.heldExchange(t)
				cert := h.ca.issue(t, certOpts{cn: "alice", serial: 4343})
				got := h.sendPing(t, &cert, tt.h2)
				waitFor(t, "Ping held at Exchange", func() bool { return hd.entered.Load() == 1 })
				gen := h.edge.revocation.current()
				h.crl.revoke(h.ca, 4343)
				waitFor(t, "new snapshot", func() bool { return h.edge.revocation.current() > gen })
				if noStop {
					hd.let()
					if a := <-got; a.err == nil && a.resp.StatusCode != http.StatusForbidden {
						t.Fatalf("the revoked device's held Ping got Exchange's answer %s %q, want 403", a.resp.Status, a.body)
					}
					return
				}
				stopped := h.stopAsync(t)
				a := <-got
				if a.err == nil && drainedPingOK(a.resp, a.body) == "" {
					t.Fatalf("the revoked device's held Ping got the drain's 200 Status 1")
				}
				if a.err == nil && a.resp.StatusCode != http.StatusForbidden {
					t.Errorf("the revoked device's held Ping got %s %q, want 403", a.resp.Status, a.body)
				}
				if err := <-stopped; err != nil {
					t.Fatalf("Stop: %v", err)
				}
			})
		}
	}
}
