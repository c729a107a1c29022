package s4u_test

// The service account's TGT over time: refresh, renew-till, one TGT for
// concurrent first requests, an unreachable KDC and its restart.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"

	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
	"github.com/segmesh/segmesh/pkg/s4u"
)

func TestTGTRefresh(t *testing.T) {
	clk, k, c := clockedClient(t, nil)
	ctx := context.Background()
	pair := func() {
		t.Helper()
		if _, err := c.S4U2Self(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	tgt := func() {
		t.Helper()
		if _, err := c.TGT(ctx, realm); err != nil {
			t.Fatal(err)
		}
	}
	counts := func() (as, renew int) { return k.Count(kdctest.KindAS), k.Count(kdctest.KindRenew) }
	want := func(as, renew int) {
		t.Helper()
		c.Wait()
		if a, r := counts(); a != as || r != renew {
			t.Fatalf("AS = %d, renewals = %d; want %d, %d", a, r, as, renew)
		}
	}
	pair()
	want(2, 0)
	st := c.TGTs()
	if len(st) != 1 || st[0].Realm != realm || !st[0].RefreshAt.Equal(st[0].StartTime.Add(8*time.Hour)) {
		t.Fatalf("TGT status %+v, want refresh at 80%% of 10h", st)
	}
	// A pair within the first hour uses the TGT as it is.
	clk.Add(50 * time.Minute)
	pair()
	want(2, 0)
	// A pair with an older TGT renews it first (one TGS exchange, no AS),
	// so the pair's tickets get a full lifetime.
	clk.Add(6 * time.Hour)
	pair()
	want(2, 1)
	if st := c.TGTs(); !st[0].StartTime.Equal(clk.Now()) || st[0].EndTime.Sub(st[0].StartTime) != 10*time.Hour {
		t.Fatalf("renewed TGT %+v", st[0])
	}
	// Other callers get the current TGT until 80%, then it is renewed in
	// the background while they go on using it.
	clk.Add(7 * time.Hour)
	tgt()
	want(2, 1)
	clk.Add(90 * time.Minute)
	for range 10 {
		tgt()
	}
	want(2, 2)
	// A refused renewal falls back to the AS exchange (one round trip: the
	// key is cached).
	k.FailWith(kdctest.KindRenew, errorcode.KDC_ERR_POLICY)
	clk.Add(8*time.Hour + 30*time.Minute)
	tgt()
	want(3, 3)
	k.FailWith(kdctest.KindRenew, 0)
	// Expired: callers wait for an AS exchange (an expired TGT cannot be
	// renewed).
	clk.Add(11 * time.Hour)
	pair()
	want(4, 3)
}

func TestTGTRenewTillNear(t *testing.T) {
	clk, k, c := clockedClient(t, func(cfg *kdctest.Config) { cfg.RenewLifetime = 12 * time.Hour })
	if _, err := c.S4U2Self(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	// 3 hours of renewable life left: a renewal would give a 3-hour TGT
	// (and 3-hour user tickets), so a new AS exchange is made instead.
	clk.Add(9 * time.Hour)
	if _, err := c.S4U2Self(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	if as, r := k.Count(kdctest.KindAS), k.Count(kdctest.KindRenew); as != 3 || r != 0 {
		t.Fatalf("AS = %d, renewals = %d; want 3, 0", as, r)
	}
}

func TestConcurrentFirstRequestsShareOneTGT(t *testing.T) {
	k := kdctest.Start(t, labConfig())
	c := newClient(t, newTransport(t, map[string][]string{realm: {k.Addr()}}), nil)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.S4U2Self(context.Background(), "alice"); err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d calls failed", failed.Load())
	}
	if n := k.Count(kdctest.KindAS); n != 2 {
		t.Fatalf("AS requests = %d, want 2 (one AS exchange)", n)
	}
	if n := k.Count(kdctest.KindS4U2Self); n != 50 {
		t.Fatalf("S4U2Self = %d", n)
	}
}

func TestUnreachableAndRestart(t *testing.T) {
	k := kdctest.Start(t, labConfig())
	var stages []s4u.Stage
	var mu sync.Mutex
	c := newClient(t, newTransport(t, map[string][]string{realm: {k.Addr()}}), func(c *s4u.Config) {
		c.Hooks.OnExchange = func(st s4u.Stage, _ string, _ error) { mu.Lock(); stages = append(stages, st); mu.Unlock() }
	})
	ctx := context.Background()
	if _, err := c.ServiceTicket(ctx, "alice", target); err != nil {
		t.Fatal(err)
	}
	k.Close()
	_, err := c.ServiceTicket(ctx, "alice", target)
	var ue *s4u.UnreachableError
	if !errors.As(err, &ue) || !s4u.IsTemporary(err) {
		t.Fatalf("err = %v, want a temporary UnreachableError", err)
	}
	if err := k.Listen(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ServiceTicket(ctx, "alice", target); err != nil {
		t.Fatalf("after the KDC restarted: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []s4u.Stage{s4u.StageASReq, s4u.StageASReq, s4u.StageS4U2Self, s4u.StageS4U2Proxy, s4u.StageS4U2Self, s4u.StageS4U2Self, s4u.StageS4U2Proxy}
	if strings.Join(stagesStrings(stages), ",") != strings.Join(stagesStrings(want), ",") {
		t.Fatalf("hook stages %v, want %v", stages, want)
	}
}

func stagesStrings(s []s4u.Stage) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return out
}
