package refresh_test

import (
	"context"
	"math/big"
	"sync"
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
	testDisplacedReplayElsewhere(t, "")
}

// TestAttackDisplacedThenOlderReplaySameRefresh: the two swaps of
// TestAttackDisplacedThenOlderReplayElsewhere in one refresh, in both
// orders (the distribution points are fetched concurrently; the test holds
// one URL's answer until the other's fetch is done). When Y's URL is done
// first, X3 is not older than anything displaced yet (X5 is still in force
// at X's URL), so it is put in force beside X5, harmless while the process
// runs; the restart must still put X5 in force. It did not: the displaced
// X5 was held only in memory, and the store kept X3 as Y's CRL, so serial
// 5 was good after a restart.
func TestAttackDisplacedThenOlderReplaySameRefresh(t *testing.T) {
	for _, first := range []string{"y", "x"} {
		t.Run(first+" first", func(t *testing.T) { testDisplacedReplayElsewhere(t, first) })
	}
}

// testDisplacedReplayElsewhere runs the replay in two refreshes (first "")
// or in one, with the fetch of Y's URL (first "y") or of X's URL ("x")
// done before the other answers.
func testDisplacedReplayElsewhere(t *testing.T, first string) {
	f := newFixture(t)
	dir := t.TempDir()
	other := newCDP(t)
	dpX, dpY := f.cdp.url(), other.url()
	part := func(dp string, n int64, serials ...int64) []byte { return partCRL(t, f.ca, dp, n, serials...) }
	// hold makes gated's answers wait until the fetch of the URL after is done.
	var await struct {
		sync.Mutex
		url  string
		done chan struct{}
	}
	hold := func(gated *cdp, after string) {
		await.Lock()
		defer await.Unlock()
		await.url, await.done = after, make(chan struct{})
		gated.gate.Store(&await.done)
	}
	cfg := func() refresh.Config {
		return f.config(func(c *refresh.Config) {
			c.Store, c.Fetcher.MaxBytes, c.URLs = store.New(dir), 1<<16, []string{dpX, dpY}
			c.Hooks.OnFetch = func(url, _ string, _ time.Duration) {
				await.Lock()
				defer await.Unlock()
				if url == await.url && await.done != nil {
					close(await.done)
					await.url = ""
				}
			}
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
	switch first {
	case "":
		r.RefreshNow(context.Background())
		other.serve(part(dpX, 3), "")
		r.RefreshNow(context.Background())
	case "y": // X's URL answers once the fetch of Y's is done
		other.serve(part(dpX, 3), "")
		hold(f.cdp, dpY)
		r.RefreshNow(context.Background())
	case "x":
		other.serve(part(dpX, 3), "")
		hold(other, dpX)
		r.RefreshNow(context.Background())
	}
	f.cdp.gate.Store(nil)
	other.gate.Store(nil)
	if d := r.Snapshot().Decide(leaf, now, crl.Policy{}); d.Verdict != crl.Revoked {
		t.Fatalf("before the restart: serial 5 %v; want revoked (X5 in force)", d.Verdict)
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
