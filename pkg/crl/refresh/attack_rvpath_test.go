package refresh_test

import (
	"context"
	"crypto/x509"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl/refresh"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

// TestAttackPanicAfterANewETagIsNoChange: the distribution point answers
// 200 with a new CRL (serial 7 revoked) and a new ETag, and its check
// panics. Were the panicked attempt to keep the new ETag (in memory, or in
// the stored record a restart reads), the next request would carry
// If-None-Match with it, the distribution point would answer 304, and the
// old CRL would stay in force as if nothing had changed: serial 7 good
// until the CRL after it. The panic must count as a failed fetch in every
// way: the validators of the CRL in force are kept, nothing is written,
// and the next refresh (or a restart) fetches the new CRL. It held on main.
func TestAttackPanicAfterANewETagIsNoChange(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "next refresh"
		if restart {
			name = "restart"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			dir := t.TempDir()
			var armed atomic.Bool
			cfg := f.config(func(c *refresh.Config) {
				c.Store = store.New(dir)
				c.Trusted = func() []*x509.Certificate {
					if armed.Load() {
						panic("unexpected CRL bytes")
					}
					return []*x509.Certificate{f.ca.Cert}
				}
			})
			f.cdp.serve(f.crl(t, 1, t0.Add(-time.Hour), 5), `"a"`)
			r := newRefresher(t, cfg)
			if err := r.StartupFetch(context.Background()); err != nil {
				t.Fatal(err)
			}

			f.cdp.serve(f.crl(t, 2, t0, 5, 7), `"b"`)
			armed.Store(true)
			r.RefreshNow(context.Background())
			if got := f.results.last(); got != "panic" {
				t.Fatalf("result %q, want panic", got)
			}
			armed.Store(false)
			if revoked(t, r, f.later) {
				t.Fatal("serial 7 revoked by the CRL whose check panicked")
			}

			if restart {
				r = newRefresher(t, cfg)
				if err := r.StartupFetch(context.Background()); err != nil {
					t.Fatal(err)
				}
			} else {
				f.clock.Advance(time.Hour)
				r.RefreshNow(context.Background())
			}
			if got := f.results.last(); got != refresh.ResultOK {
				t.Fatalf("result after the panic %q, want %q (a 304 on the ETag the panicked fetch saw keeps the old CRL)", got, refresh.ResultOK)
			}
			if !revoked(t, r, f.later) {
				t.Fatal("serial 7 good after the panicked fetch: the new CRL was never put in force")
			}
		})
	}
}
