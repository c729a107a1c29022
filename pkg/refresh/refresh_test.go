package refresh

import (
	"testing"
	"time"
)

// TestTheMarginsFitTogether checks the relations the edge and the ticket
// role rely on, so changing one number alone fails here.
func TestTheMarginsFitTogether(t *testing.T) {
	tests := []struct {
		rule string
		ok   bool
	}{
		{"an always-on device passes through the edge's soft window (EdgeSoftMargin - EdgeHardMargin > MaxPingHeartbeat), so it never waits on an expired ticket",
			EdgeSoftMargin-EdgeHardMargin > MaxPingHeartbeat},
		{"the ticket role renews when the edge's soft refresh asks (TicketMargin > EdgeSoftMargin + EdgeSoftJitter)",
			TicketMargin > EdgeSoftMargin+EdgeSoftJitter},
		{"the edge retries a background refresh within its soft window (EdgeSoftRetry < EdgeSoftMargin - EdgeHardMargin)",
			EdgeSoftRetry < EdgeSoftMargin-EdgeHardMargin},
		{"the margins are positive and jitter leaves the window open", EdgeHardMargin > 0 && EdgeSoftJitter > 0 && TicketJitter > 0 && TicketJitter < TicketMargin},
		{"a ticket is refreshed less than 2 hours before its end (TicketMargin + TicketJitter < 2h), so a 10-hour ticket serves 8", TicketMargin+TicketJitter < 2*time.Hour},
	}
	for _, tt := range tests {
		if !tt.ok {
			t.Errorf("broken: %s", tt.rule)
		}
	}
}
