package refresh_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/refresh"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

// TestAttackReplaySequencesUnwritable: TestAttackReplaySequencesEdited
// with writes to the state directory failing and recovering at random (a
// URL's record, or kept/, made unwritable, then fixed). The promise of
// the /readyz note, /status's saveError and SegmeshCRLNotSaved is that a
// restart while none of them shows keeps every CRL in force: so once
// serial 5 was revoked it is never good again, except after a restart made
// while a saveError was shown (then the test starts over from what is in
// force). 2,000 sequences of 16 steps held once; 20 stay here.
func TestAttackReplaySequencesUnwritable(t *testing.T) {
	const sequences, steps = 20, 16
	for seed := range uint64(sequences) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			w := newReplayWorld(t, seed, 9)
			rnd, k, cdps, subset := w.rnd, w.k, w.cdps, w.subset
			derive := false
			start := func(urls []string) {
				k.r = newRefresher(t, k.f.config(func(cfg *refresh.Config) {
					cfg.Store, cfg.Fetcher.MaxBytes, cfg.URLs, cfg.FailHard, cfg.DeriveFromCAs = store.New(k.dir), 1<<16, urls, false, derive
				}))
				if err := k.r.StartupFetch(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			blocked := map[string]bool{} // paths made a directory (a record) or a file (kept/)
			kept := filepath.Join(k.dir, "kept")
			toggle := func(i int) string {
				if i == len(cdps) { // kept/
					if blocked[kept] {
						if err := os.Remove(kept); err != nil {
							t.Fatal(err)
						}
						delete(blocked, kept)
						return "kept/ fixed"
					}
					// Keep what kept/ holds: moving it away would lose it,
					// which is not a failed write.
					if names, _ := os.ReadDir(kept); len(names) > 0 {
						return "kept/ left (it holds CRLs)"
					}
					if err := os.Remove(kept); err != nil && !os.IsNotExist(err) {
						t.Fatal(err)
					}
					mustWrite(t, kept, nil)
					blocked[kept] = true
					return "kept/ blocked"
				}
				rec := recordFile(k.dir, cdps[i].url())
				name := string(rune('a' + i))
				if blocked[rec] {
					if err := os.Remove(rec); err != nil {
						t.Fatal(err)
					}
					delete(blocked, rec)
					return name + "'s record fixed"
				}
				// Keep what the record held: a directory in its place
				// would lose it, which is not a failed write.
				if _, err := os.Stat(rec); err == nil {
					return name + "'s record left (it holds a CRL)"
				}
				if err := os.Mkdir(rec, 0o755); err != nil {
					t.Fatal(err)
				}
				blocked[rec] = true
				return name + "'s record blocked"
			}
			w.serveX3()
			start([]string{k.f.cdp.url()})
			seen5 := false
			var log []string
			for range steps {
				switch op := rnd.IntN(9); {
				case op == 0:
					log = append(log, w.reload(t))
				case op == 1:
					shown := false
					for _, st := range k.r.Status() {
						shown = shown || st.SaveError != nil
					}
					for _, p := range cdps {
						p.mode.Store("500")
					}
					urls, name := subset()
					derive = rnd.IntN(2) == 0
					start(urls)
					log = append(log, fmt.Sprintf("restart with %s derive %v (saveError shown %v)", name, derive, shown))
					if shown {
						seen5 = k.leaf().Verdict == crl.Revoked
					}
				case op == 2 && derive:
					i := rnd.IntN(len(cdps))
					k.r.AddDerived(cdps[i].url())
					log = append(log, "learnt "+string(rune('a'+i)))
				case op <= 4:
					log = append(log, toggle(rnd.IntN(len(cdps)+1)))
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
