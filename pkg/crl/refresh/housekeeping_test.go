package refresh_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/refresh"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

// TestHousekeepingFailuresCounted: the state directory's housekeeping
// (a record's validators rewritten after a 304, a superseded kept copy
// removed, a record of a URL no longer configured removed at the start)
// failed with only a log line. Each failure is now counted by what
// (Housekeeping, for /status) and reported to the hook (the metric); none
// loses a CRL, so serial 5 keeps its verdict. Each is made to fail with a
// non-empty directory where the record's or kept copy's description goes.
func TestHousekeepingFailuresCounted(t *testing.T) {
	tests := []struct {
		what string
		// run brings k to the housekeeping what, calling block(file) with
		// the DER of the record or kept copy whose description must not
		// be writable, and returns serial 5's verdict afterwards.
		run func(t *testing.T, k *keptFixture, start func(urls ...string), block func(file string)) crl.Verdict
	}{
		{refresh.HousekeepTouch, func(t *testing.T, k *keptFixture, start func(...string), block func(string)) crl.Verdict {
			k.f.cdp.serve(k.part(t, k.dpX, 5, 5), "")
			start(k.f.cdp.url())
			block(recordFile(k.dir, k.f.cdp.url()))
			k.r.RefreshNow(context.Background()) // the same CRL: its record touched
			return crl.Revoked
		}},
		{refresh.HousekeepRemoveRecord, func(t *testing.T, k *keptFixture, start func(...string), block func(string)) crl.Verdict {
			k.f.cdp.serve(k.part(t, k.dpX, 5, 5), "")
			k.b.serve(k.part(t, k.dpX, 5, 5), "")
			start(k.f.cdp.url(), k.b.url())
			block(recordFile(k.dir, k.b.url()))
			k.down()
			start(k.f.cdp.url()) // b's record is superseded by a's: removed
			return crl.Revoked
		}},
		{refresh.HousekeepRemoveKept, func(t *testing.T, k *keptFixture, start func(...string), block func(string)) crl.Verdict {
			k.f.cdp.serve(k.part(t, k.dpX, 5, 5), "")
			start(k.f.cdp.url())
			k.f.cdp.serve(k.part(t, k.dpY, 9, 6), "")
			k.r.RefreshNow(context.Background()) // X5 displaced, kept
			block(keptFile(t, k.r, k.f.cdp.url()))
			k.f.cdp.serve(k.part(t, k.dpX, 6), "")
			k.r.RefreshNow(context.Background()) // X6 supersedes the kept X5
			return crl.Good
		}},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			k := newKeptFixture(t)
			var mu sync.Mutex
			hooked := map[string]int{}
			start := func(urls ...string) {
				k.r = newRefresher(t, k.f.config(func(c *refresh.Config) {
					c.Store, c.Fetcher.MaxBytes, c.URLs, c.FailHard = store.New(k.dir), 1<<16, urls, false
					c.Hooks.OnHousekeepingFailed = func(where, what string) {
						mu.Lock()
						defer mu.Unlock()
						hooked[what]++
					}
				}))
				if err := k.r.StartupFetch(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			var blocked string
			block := func(file string) {
				if file == "" {
					t.Fatal("no file to block")
				}
				blocked = strings.TrimSuffix(file, ".crl") + ".json"
				if err := os.Remove(blocked); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(filepath.Join(blocked, "x"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			want := tt.run(t, k, start, block)
			h := k.r.Housekeeping()
			if h.Failures[tt.what] == 0 || h.LastError == nil || !strings.Contains(h.LastError.Error(), tt.what) || h.LastAt.IsZero() {
				t.Errorf("Housekeeping = %+v; want a %s failure, the last error naming it", h, tt.what)
			}
			mu.Lock()
			if hooked[tt.what] != h.Failures[tt.what] {
				t.Errorf("OnHousekeepingFailed %v; want %d of %s, as Housekeeping counts", hooked, h.Failures[tt.what], tt.what)
			}
			mu.Unlock()
			k.want(t, tt.what+" failed", want)
			if err := os.RemoveAll(blocked); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestHousekeepingNoneWhenHealthy: a refresher whose state directory
// works counts no housekeeping failure.
func TestHousekeepingNoneWhenHealthy(t *testing.T) {
	k := newKeptFixture(t)
	k.f.cdp.serve(k.part(t, k.dpX, 5, 5), "")
	k.b.serve(k.part(t, k.dpX, 5, 5), "")
	k.start(t)
	k.r.RefreshNow(context.Background())
	k.f.cdp.serve(k.part(t, k.dpY, 9, 6), "")
	k.r.RefreshNow(context.Background())
	if h := k.r.Housekeeping(); len(h.Failures) != 0 || h.LastError != nil {
		t.Fatalf("Housekeeping = %+v; want none", h)
	}
}
