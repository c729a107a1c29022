package ticket

import (
	"context"
	"testing"

	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// TestCacheKeyFoldsASCIIOnly: the cache keyed on strings.ToLower, so a name
// with U+0130 (İ) or the Kelvin sign (U+212A), which Unicode lower-cases to
// "i" and "k", was served another user's cached ticket and session key.
func TestCacheKeyFoldsASCIIOnly(t *testing.T) {
	k := fakeRealm(t)
	_, cl := startService(t, testConfig(k.Addr()))
	ctx := context.Background()
	if _, err := cl.GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: "alice@lab.test", TargetSpn: exchSPN}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		upn        string
		wantCached bool
	}{
		{"ALICE@LAB.TEST", true},
		{"al\u0130ce@lab.test", false},
		{"AL\u0130CE@lab.test", false},
		{"alice@LAB.test", true},
	}
	for _, tt := range tests {
		t.Run(tt.upn, func(t *testing.T) {
			resp, err := cl.GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: tt.upn, TargetSpn: exchSPN})
			if tt.wantCached {
				if err != nil || !resp.Cached {
					t.Fatalf("%q: cached=%v err=%v, want alice's cached ticket", tt.upn, resp.GetCached(), err)
				}
				return
			}
			if err == nil && resp.Cached {
				t.Fatalf("%q was served alice@lab.test's cached ticket (cname %q)", tt.upn, resp.ClientName)
			}
		})
	}
}
