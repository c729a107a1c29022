package refresh_test

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/refresh"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

// restartWith restarts k's refresher, as after a process restart, with
// only the given distribution points configured (derive: useCertificateCdps).
func (k *keptFixture) restartWith(t *testing.T, derive bool, urls ...string) {
	t.Helper()
	k.r = newRefresher(t, k.f.config(func(c *refresh.Config) {
		c.Store, c.Fetcher.MaxBytes, c.URLs, c.FailHard, c.DeriveFromCAs = store.New(k.dir), 1<<16, urls, false, derive
	}))
	if err := k.r.StartupFetch(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAttackKeptURLAddedAgain: a distribution point a gave partition X
// (X5, serial 5 revoked), then Y, so X5 is kept on disk; the process is
// restarted with a no longer configured, and the kept X5 is put in force
// as a's displaced CRL. Then a is configured again (a reload lists it, or,
// with useCertificateCdps, a certificate names it) and the CA publishes
// X7 there, revoking serial 7. The displaced source, which is never
// fetched, answered for a by URL alone, so a was taken as already there:
// never fetched, X7 never seen, serial 7 good until the next restart, and
// /readyz did not say a thing (failed on main: a fetched 0 times).
func TestAttackKeptURLAddedAgain(t *testing.T) {
	for _, how := range []string{"reload lists it", "a certificate names it"} {
		t.Run(how, func(t *testing.T) {
			k := newKeptFixture(t)
			a, b := k.f.cdp.url(), k.b.url()
			k.f.cdp.serve(k.part(t, k.dpX, 5, 5), "")
			k.b.serve(k.part(t, b, 1), "")
			k.start(t)
			k.f.cdp.serve(k.part(t, k.dpY, 9, 6), "")
			k.r.RefreshNow(context.Background())
			if keptFile(t, k.r, a) == "" {
				t.Fatal("X5 not kept on disk after a gave Y")
			}

			derive := how == "a certificate names it"
			k.restartWith(t, derive, b)
			k.want(t, "restart without a", crl.Revoked)
			k.f.cdp.serve(k.part(t, k.dpX, 7, 5, 7), "")
			before := k.f.cdp.requests.Load()
			if derive {
				if n := k.r.AddDerived(a); n != 1 {
					t.Errorf("AddDerived(%s) = %d; want 1 (a is not fetched: only a displaced CRL of it is held)", a, n)
				}
			} else {
				commit, err := k.r.Reconfigure([]string{a, b}, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				commit()
			}
			k.r.RefreshNow(context.Background())
			if got := k.f.cdp.requests.Load() - before; got != 1 {
				t.Errorf("a fetched %d times after it was configured again; want 1", got)
			}
			later := k.f.ca.Leaf(t, big.NewInt(7), t0, k.dpX)
			if d := k.r.Snapshot().Decide(later, t0.Add(time.Hour), crl.Policy{}); d.Verdict != crl.Revoked {
				t.Fatalf("serial 7, revoked by X7 at a: %v (from %q partition %q); want revoked", d.Verdict, d.Info.Source, d.Info.Partition)
			}
		})
	}
}

// TestAttackKeptFileDamaged: the kept copy of a displaced CRL damaged on
// disk (cut short, its description edited to name another URL, a later
// fetch time or another digest, or the DER of a CRL the trust store does
// not vouch for put in its place). A restart never takes a damaged copy
// for a good one: either X5 is still in force (serial 5 revoked), or the
// partition is not covered and serial 5 is refused; never good.
func TestAttackKeptFileDamaged(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, k *keptFixture, file string)
		want   crl.Verdict // Revoked, or Unknown (refused)
	}{
		{"DER cut short", func(t *testing.T, _ *keptFixture, file string) {
			b := mustRead(t, file)
			mustWrite(t, file, b[:len(b)/2])
		}, crl.Unknown},
		{"DER emptied", func(t *testing.T, _ *keptFixture, file string) { mustWrite(t, file, nil) }, crl.Unknown},
		{"DER of another CA's X", func(t *testing.T, k *keptFixture, file string) {
			mustWrite(t, file, partCRL(t, k.f.other, k.dpX, 8))
		}, crl.Unknown},
		{"description gone", func(t *testing.T, _ *keptFixture, file string) {
			if err := os.Remove(jsonOf(file)); err != nil {
				t.Fatal(err)
			}
		}, crl.Revoked},
		{"description names another URL and a later fetch", func(t *testing.T, _ *keptFixture, file string) {
			mustWrite(t, jsonOf(file), []byte(`{"url":"http://elsewhere.test/x.crl","fetchedAt":"2099-01-01T00:00:00Z","sha256":"00"}`))
		}, crl.Revoked},
		{"description is not JSON", func(t *testing.T, _ *keptFixture, file string) {
			mustWrite(t, jsonOf(file), []byte("{"))
		}, crl.Revoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newKeptFixture(t)
			k.f.cdp.serve(k.part(t, k.dpX, 5, 5), "")
			k.b.serve(k.part(t, k.b.url(), 1), "")
			k.start(t)
			k.f.cdp.serve(k.part(t, k.dpY, 9, 6), "")
			k.r.RefreshNow(context.Background())
			file := keptFile(t, k.r, k.f.cdp.url())
			if file == "" {
				t.Fatal("X5 not kept on disk")
			}
			tt.damage(t, k, file)
			k.down()
			k.start(t)
			d := k.leaf()
			if d.Verdict != tt.want || (tt.want == crl.Unknown && !d.Refused) {
				t.Fatalf("serial 5 after a restart: %v refused %v (from %q); want %v, never good", d.Verdict, d.Refused, d.Info.Source, tt.want)
			}
		})
	}
}

func jsonOf(crlFile string) string {
	return crlFile[:len(crlFile)-len(filepath.Ext(crlFile))] + ".json"
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAttackReplaySequences: whoever sits on the HTTP path of two
// distribution points, a and b, serves at each, in every refresh, one of
// the genuinely signed CRLs it has seen: X3 (partition X, serial 5 not
// listed), X5 (serial 5 revoked) or a Y newer each time, with restarts
// (both distribution points down) in between. Once X5 has been fetched, no
// CRL of X newer than it exists, so serial 5 must never be good again, at
// any step, before or after a restart. Random sequences (fixed seeds), the
// two fetches of a refresh in whatever order they finish (400 sequences
// of 12 steps held once, and 400 with reloads; 20 of each stay here).
//
// With reloads, a step may also list only a, only b, or both again, and a
// restart keeps the list of the last reload (a CRL retired by a reload and
// kept on disk, TestAttackRetiredMirrorThenRestart).
func TestAttackReplaySequences(t *testing.T) {
	for _, reloads := range []bool{false, true} {
		t.Run(map[bool]string{false: "refreshes and restarts", true: "with reloads"}[reloads], func(t *testing.T) {
			testReplaySequences(t, reloads)
		})
	}
}

func testReplaySequences(t *testing.T, reloads bool) {
	const sequences, steps = 20, 10
	for seed := range uint64(sequences) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(seed, 7))
			k := newKeptFixture(t)
			x3, x5 := k.part(t, k.dpX, 3), k.part(t, k.dpX, 5, 5)
			y := 10
			pick := func() ([]byte, string) {
				switch rnd.IntN(3) {
				case 0:
					return x3, "X3"
				case 1:
					return x5, "X5"
				}
				y++
				return k.part(t, k.dpY, int64(y), 6), fmt.Sprint("Y", y)
			}
			k.f.cdp.serve(x3, "")
			k.b.serve(k.part(t, k.dpY, int64(y), 6), "")
			k.start(t)
			seen5 := false
			inA, inB := true, true // configured, so fetched
			var log []string
			for range steps {
				if reloads && rnd.IntN(3) == 0 {
					pickURLs := rnd.IntN(3)
					urls := [][]string{{k.f.cdp.url()}, {k.b.url()}, {k.f.cdp.url(), k.b.url()}}[pickURLs]
					inA, inB = pickURLs != 1, pickURLs != 0
					commit, err := k.r.Reconfigure(urls, time.Hour)
					if err != nil {
						t.Fatal(err)
					}
					commit()
					log = append(log, fmt.Sprintf("reload to %d URL(s)", len(urls)))
				} else if rnd.IntN(4) == 0 {
					k.down()
					var urls []string
					if inA {
						urls = append(urls, k.f.cdp.url())
					}
					if inB {
						urls = append(urls, k.b.url())
					}
					k.restartWith(t, false, urls...)
					log = append(log, fmt.Sprintf("restart with %d URL(s)", len(urls)))
				} else {
					ba, na := pick()
					bb, nb := pick()
					k.f.cdp.serve(ba, "")
					k.b.serve(bb, "")
					k.r.RefreshNow(context.Background())
					seen5 = seen5 || inA && na == "X5" || inB && nb == "X5"
					log = append(log, "a:"+na+" b:"+nb)
				}
				if d := k.leaf(); seen5 && (d.Verdict == crl.Good || !d.Refused) {
					t.Fatalf("after %v: serial 5 %v refused %v (from %q partition %q); X5 was fetched and nothing newer of X exists",
						log, d.Verdict, d.Refused, d.Info.Source, d.Info.Partition)
				}
			}
		})
	}
}

// TestAttackRetiredMirrorThenRestart: a and b both give partition X; b
// gave X5 (serial 5 revoked), a is held at X3 (a mirror lagging, or whoever
// sits on its path serving the older, genuinely signed X3: refused as
// older nowhere, since a never gave anything newer). A reload removes b:
// its X5 stays in force, retired. A restart then forgets X5 and puts a's
// X3 in force: serial 5 good, although X5 was seen and no newer CRL of X
// exists (failed on main: serial 5 good after the restart). The retired
// X5 is now kept on disk (keepRetired), shown as RetiredKept with its
// file, before and after the restart; removing the file and restarting,
// the admin's way to drop it, does drop it.
func TestAttackRetiredMirrorThenRestart(t *testing.T) {
	k := newKeptFixture(t)
	a := k.f.cdp.url()
	k.f.cdp.serve(k.part(t, k.dpX, 3), "")
	k.b.serve(k.part(t, k.dpX, 5, 5), "")
	k.start(t)
	k.want(t, "X3 at a, X5 at b", crl.Revoked)
	commit, err := k.r.Reconfigure([]string{a}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	k.r.RefreshNow(context.Background())
	k.want(t, "b removed by a reload", crl.Revoked)
	file := retiredKeptFile(t, k.r, k.b.url())
	if file == "" {
		t.Fatalf("X5 retired by the reload: no RetiredKept status with a kept file: %+v", k.r.Status())
	}
	k.restartWith(t, false, a)
	if d := k.leaf(); d.Verdict == crl.Good || !d.Refused {
		t.Fatalf("after a restart: serial 5 %v refused %v (from %q); X5 was in force and nothing newer of X exists", d.Verdict, d.Refused, d.Info.Source)
	}
	if got := retiredKeptFile(t, k.r, k.b.url()); got != file {
		t.Errorf("after a restart: RetiredKept file %q; want %q", got, file)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	k.restartWith(t, false, a)
	if got := retiredKeptFile(t, k.r, k.b.url()); got != "" {
		t.Errorf("kept file removed, restarted: still RetiredKept from %q", got)
	}
	k.want(t, "kept file removed by the admin, then a restart: X3 of a alone", crl.Good)
}

// retiredKeptFile returns the kept file of url's retired CRL kept on disk;
// "" if none is in force.
func retiredKeptFile(t *testing.T, r *refresh.Refresher, url string) string {
	t.Helper()
	for _, st := range r.Status() {
		if st.URL == url && st.RetiredKept {
			if st.Displaced || !st.Retired {
				t.Errorf("RetiredKept %s: Displaced %v Retired %v; want false, true", url, st.Displaced, st.Retired)
			}
			return st.KeptFile
		}
	}
	return ""
}

// TestAttackKeptForgottenThenRetired: the kept copy of a displaced X5 is
// removed once a configured distribution point c's saved record holds X5
// too (forgetKept); a reload then removes c, and the process restarts
// while a still holds X3. c's X5 is retired by the reload and, the newest
// of X with no configured record holding one as new, kept on disk again
// (keepRetired), so the restart does not put a's X3 in force (on main:
// serial 5 good after the restart).
func TestAttackKeptForgottenThenRetired(t *testing.T) {
	k := newKeptFixture(t)
	c := newCDP(t)
	a, b := k.f.cdp.url(), k.b.url()
	k.f.cdp.serve(k.part(t, k.dpX, 3), "")
	k.b.serve(k.part(t, k.dpX, 5, 5), "")
	c.serve(k.part(t, k.dpX, 3), "")
	k.restartWith(t, false, a, b, c.url())
	k.want(t, "X5 at b", crl.Revoked)
	k.b.serve(k.part(t, k.dpY, 9, 6), "")
	k.r.RefreshNow(context.Background())
	if keptFile(t, k.r, b) == "" {
		t.Fatal("X5 not kept on disk after b gave Y")
	}
	c.serve(k.part(t, k.dpX, 5, 5), "")
	k.r.RefreshNow(context.Background())
	k.r.RefreshNow(context.Background()) // publish: the displaced X5 superseded, then its kept copy forgotten
	if keptFile(t, k.r, b) != "" {
		t.Fatal("displaced X5 still held after c gave X5")
	}
	commit, err := k.r.Reconfigure([]string{a, b}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	k.want(t, "c removed by a reload", crl.Revoked)
	if retiredKeptFile(t, k.r, c.url()) == "" {
		t.Fatalf("c's X5 retired by the reload, not kept on disk: %+v", k.r.Status())
	}
	c.mode.Store("500")
	k.restartWith(t, false, a, b)
	if d := k.leaf(); d.Verdict == crl.Good || !d.Refused {
		t.Fatalf("after a restart: serial 5 %v refused %v (from %q); X5 was in force and nothing newer of X exists", d.Verdict, d.Refused, d.Info.Source)
	}
}

// TestAttackRemovedMirrorThenRestartDerived: TestAttackRetiredMirrorThenRestart
// with segmesh.crl.useCertificateCdps on. A reload removing b does not
// retire it: b stays, fetched, as a URL learnt from certificates (derived),
// so keepRetired does not look at it. A restart forgets URLs learnt from
// certificates (only the trusted CAs' own distribution points are learnt
// again at the start), so X5 is gone and a's older X3 decides serial 5.
// The certificate names a's partition, which X3 covers, so nothing learns
// b again.
func TestAttackRemovedMirrorThenRestartDerived(t *testing.T) {
	k := newKeptFixture(t)
	a, b := k.f.cdp.url(), k.b.url()
	k.f.cdp.serve(k.part(t, k.dpX, 3), "")
	k.b.serve(k.part(t, k.dpX, 5, 5), "")
	k.restartWith(t, true, a, b)
	k.want(t, "X3 at a, X5 at b", crl.Revoked)
	commit, err := k.r.Reconfigure([]string{a}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	k.r.RefreshNow(context.Background())
	k.want(t, "b removed by a reload (now learnt from certificates)", crl.Revoked)
	k.restartWith(t, true, a)
	if d := k.leaf(); d.Verdict == crl.Good || !d.Refused {
		t.Fatalf("after a restart: serial 5 %v refused %v (from %q); X5 was in force and nothing newer of X exists", d.Verdict, d.Refused, d.Info.Source)
	}
}
