package refresh_test

import (
	"context"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/refresh"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

// keptFixture is a refresher over two distribution points (a and b) with a
// store in dir, and a certificate with serial 5 naming a's partition X.
type keptFixture struct {
	f    *fixture
	b    *cdp
	dir  string
	dpX  string
	dpY  string
	leaf func() crl.Decision
	r    *refresh.Refresher
}

func newKeptFixture(t *testing.T) *keptFixture {
	t.Helper()
	k := &keptFixture{f: newFixture(t), b: newCDP(t), dir: t.TempDir()}
	k.dpX, k.dpY = k.f.cdp.url(), "http://pki.lab.test/y.crl"
	leaf := k.f.ca.Leaf(t, big.NewInt(5), t0, k.dpX)
	k.leaf = func() crl.Decision { return k.r.Snapshot().Decide(leaf, t0.Add(time.Hour), crl.Policy{}) }
	return k
}

func (k *keptFixture) part(t *testing.T, dp string, n int64, serials ...int64) []byte {
	t.Helper()
	return partCRL(t, k.f.ca, dp, n, serials...)
}

// start (re)starts the refresher, as after a process restart.
func (k *keptFixture) start(t *testing.T) {
	t.Helper()
	k.r = newRefresher(t, k.f.config(func(c *refresh.Config) {
		c.Store, c.Fetcher.MaxBytes, c.URLs, c.FailHard = store.New(k.dir), 1<<16, []string{k.f.cdp.url(), k.b.url()}, false
	}))
	if err := k.r.StartupFetch(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// down makes both distribution points fail.
func (k *keptFixture) down() { k.f.cdp.mode.Store("500"); k.b.mode.Store("500") }

func (k *keptFixture) want(t *testing.T, step string, v crl.Verdict) {
	t.Helper()
	if d := k.leaf(); d.Verdict != v {
		t.Fatalf("%s: serial 5 %v (from %q partition %q); want %v", step, d.Verdict, d.Info.Source, d.Info.Partition, v)
	}
}

func keptFile(t *testing.T, r *refresh.Refresher, url string) string {
	t.Helper()
	for _, st := range r.Status() {
		if st.URL == url && st.Displaced {
			return st.KeptFile
		}
	}
	return ""
}

// TestKeptAcrossRestarts: a distribution point switching partitions and
// back, with a restart (its distribution points down) after each step. The
// displaced CRL of partition X is on disk from the moment it is displaced
// and put in force at every restart, and goes from the disk once the
// distribution point gives a newer X again.
func TestKeptAcrossRestarts(t *testing.T) {
	k := newKeptFixture(t)
	k.f.cdp.serve(k.part(t, k.dpX, 5, 5), "")
	k.b.serve(k.part(t, k.b.url(), 1), "")
	k.start(t)
	k.want(t, "X5 served", crl.Revoked)

	k.f.cdp.serve(k.part(t, k.dpY, 9, 6), "")
	k.r.RefreshNow(context.Background())
	k.want(t, "Y at X's URL", crl.Revoked)
	file := keptFile(t, k.r, k.dpX)
	if _, err := os.Stat(file); file == "" || err != nil {
		t.Fatalf("the displaced X5 is not kept on disk: status names %q (%v)", file, err)
	}
	k.down()
	k.start(t)
	k.want(t, "restart after the displacement", crl.Revoked)
	if keptFile(t, k.r, k.dpX) != file {
		t.Fatalf("after the restart the status names %q as the kept file; want %q", keptFile(t, k.r, k.dpX), file)
	}

	// Back to X, newer and without serial 5 (the CA un-revoked it, a
	// certificateHold released): the kept X5 goes, in memory and on disk.
	k.f.cdp.serve(k.part(t, k.dpX, 6), "")
	k.r.RefreshNow(context.Background())
	k.want(t, "X6 served", crl.Good)
	if _, err := os.Stat(file); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the kept X5 is still on disk after X6 superseded it: %v", err)
	}
	k.down()
	k.start(t)
	k.want(t, "restart after X6", crl.Good)
}

// TestKeptWhenTheKeptFileCannotBeWritten: when the displaced CRL cannot be
// written to the store's kept CRLs, its URL's record is not replaced, so a
// restart puts it in force from there (serial 5 revoked, not uncovered).
func TestKeptWhenTheKeptFileCannotBeWritten(t *testing.T) {
	k := newKeptFixture(t)
	k.f.cdp.serve(k.part(t, k.dpX, 5, 5), "")
	k.b.serve(k.part(t, k.b.url(), 1), "")
	k.start(t)
	if err := os.WriteFile(filepath.Join(k.dir, "kept"), nil, 0o644); err != nil { // a file where the directory goes
		t.Fatal(err)
	}
	k.f.cdp.serve(k.part(t, k.dpY, 9, 6), "")
	k.r.RefreshNow(context.Background())
	k.want(t, "Y at X's URL", crl.Revoked)
	k.down()
	k.start(t)
	k.want(t, "restart", crl.Revoked)
}

// TestKeptWithAMirror: two distribution points give partition X, b a
// number behind (a mirror lagging, or a replay). Both are accepted (the
// newer is in force). When a goes on to give Y, X5 is kept across a
// restart, and b's X4 does not take its place; once b gives X5, the kept
// copy goes from the disk.
func TestKeptWithAMirror(t *testing.T) {
	k := newKeptFixture(t)
	k.f.cdp.serve(k.part(t, k.dpX, 5, 5), "")
	k.b.serve(k.part(t, k.dpX, 4), "")
	k.start(t)
	if err := k.r.Ready(); err != nil {
		t.Fatalf("a mirror one CRL behind: %v", err)
	}
	k.want(t, "X5 and X4", crl.Revoked)
	k.f.cdp.serve(k.part(t, k.dpY, 9, 6), "")
	k.r.RefreshNow(context.Background())
	file := keptFile(t, k.r, k.dpX)
	k.down()
	k.start(t)
	k.want(t, "restart with X4 at b", crl.Revoked)

	k.f.cdp.serve(k.part(t, k.dpY, 9, 6), "")
	k.b.serve(k.part(t, k.dpX, 5, 5), "")
	k.r.RefreshNow(context.Background())
	k.want(t, "X5 at b", crl.Revoked)
	if _, err := os.Stat(file); file == "" || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("kept file %q after b gave X5: %v; want it gone", file, err)
	}
}
