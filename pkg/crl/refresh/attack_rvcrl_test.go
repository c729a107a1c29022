package refresh_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
	"github.com/segmesh/segmesh/pkg/crl/refresh"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

// TestAttackDisplacedThenOlderReplay: whoever sits on a distribution
// point's HTTP path serves, at partition X's URL, X5 (serial 5 revoked),
// then partition Y (X5 is displaced), then X3, genuinely signed and older,
// which does not list serial 5. The rollback check compared X3 only with
// what the URL gave last (Y, another partition), so X3 was accepted and
// saved to disk as the URL's CRL; while the process runs X5 wins in the
// snapshot, but a restart forgets the displaced X5 and puts X3 in force
// from the store: serial 5 good again. Without the replay the restart
// would refuse serial 5 (the store's Y does not cover it). The older
// partition must be refused as older than the displaced one.
func TestAttackDisplacedThenOlderReplay(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	dpX := f.cdp.url()
	const dpY = "http://pki.lab.test/y.crl"
	part := func(dp string, n int64, serials ...int64) []byte { return partCRL(t, f.ca, dp, n, serials...) }
	cfg := func() refresh.Config {
		return f.config(func(c *refresh.Config) { c.Store = store.New(dir); c.Fetcher.MaxBytes = 1 << 16 })
	}
	leaf := f.ca.Leaf(t, big.NewInt(5), t0, dpX)
	now := t0.Add(time.Hour)

	f.cdp.serve(part(dpX, 5, 5), "")
	r := newRefresher(t, cfg())
	if err := r.StartupFetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.cdp.serve(part(dpY, 9, 6), "")
	r.RefreshNow(context.Background())
	f.cdp.serve(part(dpX, 3), "")
	r.RefreshNow(context.Background())
	if d := r.Snapshot().Decide(leaf, now, crl.Policy{}); d.Verdict != crl.Revoked {
		t.Fatalf("before the restart: serial 5 %v; want revoked (X5 in force)", d.Verdict)
	}

	// Restart while the distribution point is down: the store decides.
	f.cdp.mode.Store("500")
	second := newRefresher(t, cfg())
	_ = second.StartupFetch(context.Background()) // Y covers nothing of serial 5's: an error is fine
	if d := second.Snapshot().Decide(leaf, now, crl.Policy{}); d.Verdict == crl.Good || !d.Refused {
		t.Fatalf("after a restart: serial 5 %v refused %v (from %q partition %q); an older partition replayed after a displacement was put in force",
			d.Verdict, d.Refused, d.Info.Source, d.Info.Partition)
	}
}

// TestAttackDisplacedThenOlderReplayElsewhere: the same replay across two
// distribution points: Y served at X's URL (X5 displaced, the store's X
// entry becomes Y), then, in a later refresh, the older X3 at Y's URL.
// Refused as older than the displaced X5 too, so no restart puts X3 in
// force from the store.
func TestAttackDisplacedThenOlderReplayElsewhere(t *testing.T) {
	testDisplacedReplayElsewhere(t, false)
}

// TestAttackDisplacedThenOlderReplaySameRefresh: the two swaps of
// TestAttackDisplacedThenOlderReplayElsewhere in one refresh. The
// distribution points are fetched concurrently, and the check against the
// displaced CRL runs before the fetch of X's URL has displaced X5 (and the
// store is written before the commit), so X3 is saved as Y's CRL and a
// restart puts it in force: serial 5 good.
func TestAttackDisplacedThenOlderReplaySameRefresh(t *testing.T) {
	t.Skip("defect: the older-than-displaced check and the store write run outside r.mu, before a concurrent fetch displaces; see /work/notes/s6/rvcrl-report.md")
	testDisplacedReplayElsewhere(t, true)
}

func testDisplacedReplayElsewhere(t *testing.T, concurrent bool) {
	f := newFixture(t)
	dir := t.TempDir()
	other := newCDP(t)
	dpX, dpY := f.cdp.url(), other.url()
	part := func(dp string, n int64, serials ...int64) []byte { return partCRL(t, f.ca, dp, n, serials...) }
	cfg := func() refresh.Config {
		return f.config(func(c *refresh.Config) {
			c.Store, c.Fetcher.MaxBytes, c.URLs = store.New(dir), 1<<16, []string{dpX, dpY}
		})
	}
	leaf := f.ca.Leaf(t, big.NewInt(5), t0, dpX)
	now := t0.Add(time.Hour)

	f.cdp.serve(part(dpX, 5, 5), "")
	other.serve(part(dpY, 9, 6), "")
	r := newRefresher(t, cfg())
	if err := r.StartupFetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.cdp.serve(part(dpY, 9, 6), "")
	if concurrent {
		other.serve(part(dpX, 3), "")
		r.RefreshNow(context.Background())
	} else {
		r.RefreshNow(context.Background())
		other.serve(part(dpX, 3), "")
		r.RefreshNow(context.Background())
	}

	f.cdp.mode.Store("500")
	other.mode.Store("500")
	second := newRefresher(t, cfg())
	_ = second.StartupFetch(context.Background())
	if d := second.Snapshot().Decide(leaf, now, crl.Policy{}); d.Verdict == crl.Good || !d.Refused {
		t.Fatalf("after a restart: serial 5 %v refused %v (from %q partition %q); an older partition replayed at another URL was put in force",
			d.Verdict, d.Refused, d.Info.Source, d.Info.Partition)
	}
}

// partCRL is ca's CRL of the partition of distribution point dp, number n
// (thisUpdate n minutes after t0, good for two days), revoking serials.
func partCRL(tb testing.TB, ca *crltest.CA, dp string, n int64, serials ...int64) []byte {
	tb.Helper()
	o := crltest.CRLOptions{Number: n, ThisUpdate: t0.Add(time.Duration(n) * time.Minute), NextUpdate: t0.Add(48 * time.Hour), Partition: []string{dp}}
	for _, s := range serials {
		o.Revoked = append(o.Revoked, crltest.Revoked{Serial: big.NewInt(s), At: t0})
	}
	return ca.CRL(tb, o)
}
