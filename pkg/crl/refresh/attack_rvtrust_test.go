package refresh_test

import (
	"context"
	"math/big"
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
