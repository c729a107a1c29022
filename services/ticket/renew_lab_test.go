//go:build lab

package ticket

import (
	"context"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/labenv"
)

// TestLabRenewalFallsBackToPair refreshes a ticket the way the cache does
// when it is due, against the lab's Samba KDC: Samba refuses to renew an
// S4U2Proxy ticket (KDC_ERR_POLICY), the role makes a new pair instead and
// Apache accepts it; after refusalsToPause refusals renewals pause, and a
// refresh costs the pair alone.
func TestLabRenewalFallsBackToPair(t *testing.T) {
	lab := labenv.Up(t)
	svc, cx := labService(t, lab)
	ctx := context.Background()
	spn := svc.engine().cfg.SPNs[0]
	old, _, err := svc.Ticket(ctx, "alice", spn)
	if err != nil {
		t.Fatal(err)
	}
	for i := range refusalsToPause + 1 {
		before := cx.tgs.Load()
		nt, err := svc.fetch(ctx, "alice", spn, old)
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		if got := askExchange(t, lab, nt); !strings.HasPrefix(got, "alice@") {
			t.Fatalf("refresh %d: Apache authenticated %q", i, got)
		}
		want := int32(3) // refused renewal + S4U2Self + S4U2Proxy
		if i == refusalsToPause {
			want = 2 // paused: the pair alone
		}
		if n := cx.tgs.Load() - before; n != want {
			t.Fatalf("refresh %d: %d TGS exchanges, want %d", i, n, want)
		}
		old = nt
	}
}
