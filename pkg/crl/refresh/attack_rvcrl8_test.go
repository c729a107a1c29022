package refresh_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/refresh"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

// blockRecord makes writing url's record in the store in dir fail (a
// directory where its file goes: the tests run as root, which a read-only
// directory does not stop); fix undoes it.
func blockRecord(t *testing.T, dir, url string) (fix func()) {
	t.Helper()
	rec := recordFile(dir, url)
	if err := os.Remove(rec); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(rec, 0o755); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.Remove(rec); err != nil {
			t.Fatal(err)
		}
	}
}

// recordFile is the file of url's record in the store in dir (store.base).
func recordFile(dir, url string) string {
	h := sha256.Sum256([]byte(url))
	return filepath.Join(dir, hex.EncodeToString(h[:16])+".crl")
}

// TestAttackFloorInARecordOverwritten: a CRL found at the start in the
// record of a URL no longer configured (or learnt from a certificate in an
// earlier run) is the floor of its partition. When it cannot be copied to
// kept/ (the cap on kept CRLs reached, here MaxKept 1, or kept/ not
// writable) it stays in force from that record, which is then its only
// copy. The same URL configured again by a reload, or named again by a
// certificate, is fetched afresh, and a mirror lagging there (or whoever
// sits on its path) serves the older, genuinely signed Y3: accepted beside
// the floor and saved over that record. The next restart has lost Y7:
// serial 6, which only Y7 lists, must not be good. The same after a crash
// between the two writes of c's record (icrl4): its description lost, or
// left describing the CRL before, the start cannot read its URL from it;
// on main the floor was then named by its file, not taken for c's record
// when c came back, and overwritten.
func TestAttackFloorInARecordOverwritten(t *testing.T) {
	for _, why := range []string{"cap", "kept/ not writable"} {
		for _, how := range []string{"reload lists it", "a certificate names it"} {
			for _, crash := range []string{"", ", description lost", ", description of the CRL before"} {
				t.Run(why+", "+how+crash, func(t *testing.T) { floorInRecordOverwritten(t, why, how, crash) })
			}
		}
	}
}

// floorInRecordOverwritten is one case of
// TestAttackFloorInARecordOverwritten; crash names the state a crash
// between the two writes of c's record left it in ("" for none).
func floorInRecordOverwritten(t *testing.T, why, how, crash string) {
	k, c, y := newKeptFixtureY(t)
	a, b := k.f.cdp.url(), k.b.url()
	start := func(urls ...string) {
		k.r = newRefresher(t, k.f.config(func(cfg *refresh.Config) {
			cfg.Store, cfg.Fetcher.MaxBytes, cfg.URLs, cfg.FailHard, cfg.DeriveFromCAs = store.New(k.dir), 1<<16, urls, false, true
			if why == "cap" {
				cfg.MaxKept = 1
			}
		}))
		if err := k.r.StartupFetch(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if why == "cap" {
		// b's X5 learnt and kept: kept/ is at its cap of 1.
		start(a)
		k.r.AddDerived(b)
		k.r.RefreshNow(context.Background())
		k.r.AddDerived(c.url())
		k.r.RefreshNow(context.Background())
	} else {
		// c configured gives Y7; the configuration is edited
		// while the process is down (c out), and kept/ is a
		// file, so the floor stays in c's record.
		start(a, c.url())
		mustWrite(t, filepath.Join(k.dir, "kept"), nil)
	}
	if d := y(); d.Verdict != crl.Revoked {
		t.Fatalf("serial 6 with Y7 at c: %v", d.Verdict)
	}
	crashBetweenTheWrites(t, recordFile(k.dir, c.url()), crash)
	k.down()
	c.mode.Store("500")
	start(a)
	if d := y(); d.Verdict != crl.Revoked {
		t.Fatalf("restart: serial 6 %v (from %q); want revoked, Y7 from c's record as the floor", d.Verdict, d.Info.Source)
	}
	if why == "kept/ not writable" {
		// The failed copy to kept/ shows on /status (saveError)
		// and so on /readyz, not only in the metric.
		var st refresh.SourceStatus
		for _, s := range k.r.Status() {
			if s.KeptFile == recordFile(k.dir, c.url()) {
				st = s
			}
		}
		if st.SaveError == nil || crash != ", description lost" && st.URL != c.url() {
			t.Errorf("floor in c's record, kept/ not writable: status %+v; want a SaveError and c's record as the kept file", st)
		}
	}

	c.serve(k.part(t, k.dpY, 3), "") // c lags: Y3, serial 6 not listed
	urls := []string{a}
	if how == "reload lists it" {
		urls = append(urls, c.url())
		commit, err := k.r.Reconfigure(urls, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		commit()
	} else {
		k.r.AddDerived(c.url())
	}
	k.r.RefreshNow(context.Background())
	if d := y(); d.Verdict != crl.Revoked {
		t.Fatalf("Y3 at c beside the Y7 floor: serial 6 %v (from %q); want revoked", d.Verdict, d.Info.Source)
	}
	c.mode.Store("500")
	start(urls...)
	if d := y(); d.Verdict == crl.Good || !d.Refused {
		t.Fatalf("after a restart: serial 6 %v refused %v (from %q); Y7 was the floor of Y and nothing newer of Y exists",
			d.Verdict, d.Refused, d.Info.Source)
	}
}

// TestAttackDropKeptWhileItsRecordStays: the way the /readyz note and
// docs/operations.md give to drop a CRL kept on disk for a URL a reload
// removed (or learnt from a certificate) is "remove the kept file and
// restart": an admin dropping a CA whose distribution point published one
// CRL and went away, which is stale and, under failClosedOnStale, refuses
// every certificate of its partition. The kept file is a copy of the URL's
// record, and the record stays on disk. After the admin's removal and a
// restart, nothing of X5 must be in force (serial 5 decided by a's X3).
func TestAttackDropKeptWhileItsRecordStays(t *testing.T) {
	for _, how := range []string{"reload removed it", "learnt from a certificate"} {
		t.Run(how, func(t *testing.T) {
			k := newKeptFixture(t)
			a, b := k.f.cdp.url(), k.b.url()
			k.f.cdp.serve(k.part(t, k.dpX, 3), "")
			k.b.serve(k.part(t, k.dpX, 5, 5), "")
			var file string
			if how == "reload removed it" {
				k.restartWith(t, false, a, b)
				commit, err := k.r.Reconfigure([]string{a}, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				commit()
				k.r.RefreshNow(context.Background())
				file = retiredKeptFile(t, k.r, b)
			} else {
				k.restartWith(t, true, a)
				k.r.AddDerived(b)
				k.r.RefreshNow(context.Background())
				for _, st := range k.r.Status() {
					if st.URL == b && st.KeptFile != "" {
						file = st.KeptFile
					}
				}
			}
			k.want(t, "X5 at b", crl.Revoked)
			if file == "" {
				t.Fatalf("X5 of b not kept on disk: %+v", k.r.Status())
			}
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
			k.b.mode.Store("500")
			k.restartWith(t, how != "reload removed it", a)
			for _, st := range k.r.Status() {
				if st.Number == "5" {
					t.Errorf("kept file %s removed, restarted: X5 in force again from %q (kept file %q)", file, st.URL, st.KeptFile)
				}
			}
			k.want(t, "kept file removed by the admin, then a restart: X3 of a alone", crl.Good)
		})
	}
}

// TestAttackSaveFailedThenFixed: a's record cannot be written when a
// gives X5 (a directory where its file goes: the tests run as root, which
// a read-only directory does not stop); b, a mirror, holds X3. The /readyz
// note tells the admin to fix the state directory, who does. Then a gives
// the same X5 again (200, or 304 with an ETag), or is down, or gives Y (X5
// displaced). A restart while a is down must not put b's X3 alone in
// force: once the directory is writable again and a refresh has run, X5
// must be on disk. On main a CRL not written was never written again until
// a gave a newer one, so the only thing the admin could do, restart, put
// X3 in force: serial 5 good.
func TestAttackSaveFailedThenFixed(t *testing.T) {
	for _, then := range []string{"same X5", "304", "a down", "a gives Y"} {
		t.Run(then, func(t *testing.T) {
			k := newKeptFixture(t)
			a, b := k.f.cdp.url(), k.b.url()
			k.f.cdp.serve(k.part(t, k.dpX, 3), "")
			k.b.serve(k.part(t, k.dpX, 3), "")
			k.restartWith(t, false, a, b)
			fix := blockRecord(t, k.dir, a)
			etag := map[bool]string{true: `"x5"`}[then == "304"]
			k.f.cdp.serve(k.part(t, k.dpX, 5, 5), etag)
			k.r.RefreshNow(context.Background())
			k.want(t, "X5 at a, not written", crl.Revoked)
			if st, _ := statusOf(k.r, a); st.SaveError == nil {
				t.Errorf("X5 at a not written: no SaveError on /status")
			}

			fix() // the admin fixes the directory
			switch then {
			case "a down":
				k.f.cdp.mode.Store("500")
			case "a gives Y":
				k.f.cdp.serve(k.part(t, k.dpY, 9, 6), "")
			}
			k.r.RefreshNow(context.Background())
			for _, st := range k.r.Status() {
				if st.SaveError != nil {
					t.Errorf("directory fixed, refreshed: %s still has SaveError %v", st.URL, st.SaveError)
				}
			}
			k.f.cdp.mode.Store("500")
			k.restartWith(t, false, a, b)
			if d := k.leaf(); d.Verdict == crl.Good || !d.Refused {
				t.Fatalf("directory fixed, refreshed, restarted: serial 5 %v refused %v (from %q); X5 was in force and nothing newer of X exists",
					d.Verdict, d.Refused, d.Info.Source)
			}
		})
	}
}

// TestAttackReplaySequencesEdited: TestAttackReplaySequences with three
// distribution points (a, b, c), each serving X3, X5 or an ever newer Y at
// every refresh, and between refreshes: a reload to any subset of them, a
// restart with any subset (the configuration edited while the process was
// down, so nothing retired them), with useCertificateCdps on or off, a
// certificate naming one of them (learnt), and the cap on kept CRLs at 1
// or the default. Only X5 lists serial 5, so once serial 5 was revoked it
// must never be good again, at any step. 300 sequences of 14 steps held
// once; 20 stay here.
func TestAttackReplaySequencesEdited(t *testing.T) {
	const sequences, steps = 20, 14
	for seed := range uint64(sequences) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			w := newReplayWorld(t, seed, 8)
			rnd, k, cdps, subset := w.rnd, w.k, w.cdps, w.subset
			maxKept := []int{1, 0}[rnd.IntN(2)]
			derive := false
			start := func(urls []string) {
				k.r = newRefresher(t, k.f.config(func(cfg *refresh.Config) {
					cfg.Store, cfg.Fetcher.MaxBytes, cfg.URLs, cfg.FailHard, cfg.DeriveFromCAs, cfg.MaxKept = store.New(k.dir), 1<<16, urls, false, derive, maxKept
				}))
				if err := k.r.StartupFetch(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			w.serveX3()
			start([]string{k.f.cdp.url()})
			seen5 := false
			var log []string
			for range steps {
				switch op := rnd.IntN(8); {
				case op == 0:
					log = append(log, w.reload(t))
				case op == 1:
					for _, p := range cdps {
						p.mode.Store("500")
					}
					urls, name := subset()
					derive = rnd.IntN(2) == 0
					start(urls)
					log = append(log, fmt.Sprintf("restart with %s derive %v", name, derive))
				case op == 2 && derive:
					i := rnd.IntN(len(cdps))
					k.r.AddDerived(cdps[i].url())
					log = append(log, "learnt "+string(rune('a'+i)))
				default:
					log = append(log, w.refresh(t))
				}
				d := k.leaf()
				if seen5 && (d.Verdict == crl.Good || !d.Refused) {
					t.Fatalf("after %v: serial 5 %v refused %v (from %q partition %q); X5 was in force and nothing newer of X exists",
						log, d.Verdict, d.Refused, d.Info.Source, d.Info.Partition)
				}
				seen5 = seen5 || d.Verdict == crl.Revoked
			}
		})
	}
}

// TestAttackKeptDamagedWhileItsRecordIsMarked: the other side of
// TestAttackDropKeptWhileItsRecordStays. b's X5, retired by a reload, is
// kept on disk and b's record marked as kept; the kept file is then
// damaged (cut short, emptied, or another CA's CRL put in its place), not
// removed. A restart with only a (X3) configured must not take that for
// the admin's drop: the marked record stays the floor, serial 5 revoked.
func TestAttackKeptDamagedWhileItsRecordIsMarked(t *testing.T) {
	for _, damage := range []string{"cut short", "emptied", "another CA's CRL"} {
		t.Run(damage, func(t *testing.T) {
			k := newKeptFixture(t)
			a, b := k.f.cdp.url(), k.b.url()
			k.f.cdp.serve(k.part(t, k.dpX, 3), "")
			k.b.serve(k.part(t, k.dpX, 5, 5), "")
			k.restartWith(t, false, a, b)
			commit, err := k.r.Reconfigure([]string{a}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			commit()
			file := retiredKeptFile(t, k.r, b)
			if file == "" {
				t.Fatalf("X5 of b not kept on disk: %+v", k.r.Status())
			}
			switch damage {
			case "cut short":
				b := mustRead(t, file)
				mustWrite(t, file, b[:len(b)/2])
			case "emptied":
				mustWrite(t, file, nil)
			default:
				mustWrite(t, file, partCRL(t, k.f.other, k.dpX, 8))
			}
			k.b.mode.Store("500")
			k.restartWith(t, false, a)
			if d := k.leaf(); d.Verdict != crl.Revoked {
				t.Fatalf("kept file %s, restarted: serial 5 %v (from %q); want revoked from b's record", damage, d.Verdict, d.Info.Source)
			}
		})
	}
}

// TestAttackRetiredUnsavedThenFixed: TestAttackSaveFailedThenFixed where a
// reload removes b, the distribution point whose X5 could not be written,
// before the admin fixes the state directory. b is retired, so never
// fetched again, and its CRL was kept on disk only when its record held
// it: nothing wrote X5 any more, its saveError (the /readyz note, the
// alert) stayed for ever, and a restart put a's X3 in force: serial 5 good.
func TestAttackRetiredUnsavedThenFixed(t *testing.T) {
	k := newKeptFixture(t)
	a, b := k.f.cdp.url(), k.b.url()
	k.f.cdp.serve(k.part(t, k.dpX, 3), "")
	k.b.serve(k.part(t, k.dpX, 3), "")
	k.restartWith(t, false, a, b)
	fix := blockRecord(t, k.dir, b)
	k.b.serve(k.part(t, k.dpX, 5, 5), "")
	k.r.RefreshNow(context.Background())
	k.want(t, "X5 at b, not written", crl.Revoked)
	commit, err := k.r.Reconfigure([]string{a}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	fix() // the admin fixes the directory
	k.r.RefreshNow(context.Background())
	if st, _ := statusOf(k.r, b); st.SaveError != nil || !st.RetiredKept {
		t.Errorf("directory fixed, refreshed: b's X5 SaveError %v RetiredKept %v; want written and kept", st.SaveError, st.RetiredKept)
	}
	k.b.mode.Store("500")
	k.restartWith(t, false, a)
	if d := k.leaf(); d.Verdict == crl.Good || !d.Refused {
		t.Fatalf("directory fixed, refreshed, restarted: serial 5 %v refused %v (from %q); X5 was in force and nothing newer of X exists",
			d.Verdict, d.Refused, d.Info.Source)
	}
}

// TestRetiredUnsavedNotNeeded: b's X5 could not be written; a gave X6,
// then Y, so X6 is kept on disk as a displaced CRL; a reload removes b.
// b's X5 needs no copy of its own (X6 is newer, and on disk), and b is
// never fetched again: its saveError (the /readyz note, and
// SegmeshCRLNotSaved saying not to restart) stayed for ever on main. It
// ends once that is known; a restart keeps X6 (serial 5 revoked).
func TestRetiredUnsavedNotNeeded(t *testing.T) {
	k := newKeptFixture(t)
	a, b := k.f.cdp.url(), k.b.url()
	k.f.cdp.serve(k.part(t, k.dpX, 3), "")
	k.b.serve(k.part(t, k.dpX, 3), "")
	k.restartWith(t, false, a, b)
	blockRecord(t, k.dir, b) // never fixed: not needed
	k.f.cdp.serve(k.part(t, k.dpX, 6, 5), "")
	k.b.serve(k.part(t, k.dpX, 5, 5), "")
	k.r.RefreshNow(context.Background())
	if st, _ := statusOf(k.r, b); st.SaveError == nil {
		t.Fatalf("b's X5 not written: no SaveError")
	}
	k.f.cdp.serve(k.part(t, k.dpY, 9, 6), "")
	k.r.RefreshNow(context.Background())
	if keptFile(t, k.r, a) == "" {
		t.Fatal("X6 not kept on disk after a gave Y")
	}
	commit, err := k.r.Reconfigure([]string{a}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	k.r.RefreshNow(context.Background())
	for _, st := range k.r.Status() {
		if st.SaveError != nil {
			t.Errorf("b removed, X6 kept on disk: %s still has SaveError %v", st.URL, st.SaveError)
		}
	}
	k.down()
	k.restartWith(t, false, a)
	k.want(t, "restart", crl.Revoked)
}

// replayWorld is the setup of the replay-sequence tests
// (TestAttackReplaySequencesEdited, TestAttackReplaySequencesUnwritable):
// three distribution points a, b, c, the CRLs X3 and X5 of partition X
// (only X5 lists serial 5), and a random source seeded per sequence.
type replayWorld struct {
	rnd    *rand.Rand
	k      *keptFixture
	cdps   []*cdp
	x3, x5 []byte
	y      int
}

func newReplayWorld(t *testing.T, seed, stream uint64) *replayWorld {
	t.Helper()
	k := newKeptFixture(t)
	w := &replayWorld{rnd: rand.New(rand.NewPCG(seed, stream)), k: k, cdps: []*cdp{k.f.cdp, k.b, newCDP(t)}, y: 10}
	w.x3, w.x5 = k.part(t, k.dpX, 3), k.part(t, k.dpX, 5, 5)
	return w
}

// pick is what a distribution point serves next: X3, X5 or an ever newer
// Y (partition Y, listing serial 6), with its name for the log.
func (w *replayWorld) pick(t *testing.T) ([]byte, string) {
	switch w.rnd.IntN(3) {
	case 0:
		return w.x3, "X3"
	case 1:
		return w.x5, "X5"
	}
	w.y++
	return w.k.part(t, w.k.dpY, int64(w.y), 6), fmt.Sprint("Y", w.y)
}

// serveX3 makes every point serve X3, as each sequence begins.
func (w *replayWorld) serveX3() {
	for _, p := range w.cdps {
		p.serve(w.x3, "")
	}
}

// reload is the step "reload to a random subset of the points" of a
// sequence; it returns the step for the log.
func (w *replayWorld) reload(t *testing.T) string {
	t.Helper()
	urls, name := w.subset()
	commit, err := w.k.r.Reconfigure(urls, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	return "reload to " + name
}

// refresh is the step "every point serves what pick draws, then a
// refresh" of a sequence, the points drawn in order; it returns the step
// for the log.
func (w *replayWorld) refresh(t *testing.T) string {
	t.Helper()
	var got []string
	for i, p := range w.cdps {
		body, name := w.pick(t)
		p.serve(body, "")
		got = append(got, string(rune('a'+i))+":"+name)
	}
	w.k.r.RefreshNow(context.Background())
	return fmt.Sprint(got)
}

// subset is a random subset of the points' URLs, with its name ({ac}).
func (w *replayWorld) subset() ([]string, string) {
	var urls []string
	name := ""
	for i, p := range w.cdps {
		if w.rnd.IntN(2) == 0 {
			urls = append(urls, p.url())
			name += string(rune('a' + i))
		}
	}
	return urls, "{" + name + "}"
}
