package refresh_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testlog"
	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/refresh"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

// TestAttackPanicInACommitThatDisplaces: guardedCommit (a3d4521) puts the
// URL's source and the list of sources back as they were when commit
// panics, but leaves on disk what commit wrote. The attempt: a commit that
// displaces the newest CRL of partition X (a, at X5 revoking serial 5,
// goes on to give partition Y) and panics at its end, after the displaced
// X5 was copied to kept/ (or, kept/ not writable, a's record was kept)
// and a's record was replaced by Y9. A restart (both distribution points
// down, b a mirror at X4 without serial 5) must still find X5, and so must
// a restart after the next, clean, commit. On main, kept/ writable: the
// restored source counted as saved (its record taken to hold X5), so the
// publish after the commit removed the kept X5 as superseded by it
// (forgetKept); a's record held Y9: after the restart serial 5 was good,
// X4 deciding. kept/ not writable held (the record is not replaced).
func TestAttackPanicInACommitThatDisplaces(t *testing.T) {
	for _, keptWritable := range []bool{true, false} {
		name := map[bool]string{true: "kept/ writable", false: "kept/ not writable"}[keptWritable]
		t.Run(name, func(t *testing.T) {
			k := newKeptFixture(t)
			var armed atomic.Bool
			logs := &lockedLog{}
			start := func() {
				k.r = newRefresher(t, k.f.config(func(c *refresh.Config) {
					c.Store, c.Fetcher.MaxBytes, c.URLs, c.FailHard = store.New(k.dir), 1<<16, []string{k.f.cdp.url(), k.b.url()}, false
					c.Logger = slog.New(testlog.PanicOn{Handler: slog.NewTextHandler(logs, nil), Prefix: "crl updated", Value: "unexpected value committing ", Armed: &armed})
				}))
				if err := k.r.StartupFetch(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			k.f.cdp.serve(k.part(t, k.dpX, 5, 5), "")
			k.b.serve(k.part(t, k.dpX, 4), "")
			start()
			k.want(t, "X5 at a, X4 at b", crl.Revoked)
			if !keptWritable {
				if err := os.WriteFile(filepath.Join(k.dir, "kept"), nil, 0o644); err != nil { // a file where the directory goes
					t.Fatal(err)
				}
			}

			armed.Store(true)
			k.f.cdp.serve(k.part(t, k.dpY, 9, 6), "")
			k.r.RefreshNow(context.Background())
			panicked := false
			for _, st := range k.r.Status() {
				var ce *crl.Error
				if st.URL == k.dpX && !st.Displaced && errors.As(st.LastError, &ce) && ce.Kind == crl.KindPanic {
					panicked = true
				}
			}
			if !panicked {
				t.Fatalf("the displacing commit of %s did not fail on a panic: %+v", k.dpX, k.r.Status())
			}
			k.want(t, "after the commit that panicked", crl.Revoked)
			k.down()
			start()
			k.want(t, "restart after the commit that panicked", crl.Revoked)

			// The commit done again without a panic, then a restart.
			armed.Store(false)
			k.f.cdp.serve(k.part(t, k.dpY, 9, 6), "")
			k.b.serve(k.part(t, k.dpX, 4), "")
			k.r.RefreshNow(context.Background())
			k.want(t, "the displacing commit again", crl.Revoked)
			k.down()
			start()
			k.want(t, "restart after it", crl.Revoked)
		})
	}
}

// TestPanicInAFailedCommitThenRetired: a commit that panics without a new
// CRL (a failed fetch) writes nothing but the CRL in force, so its source
// stays saved: a reload that then removes its URL keeps that CRL on disk
// (kept/, RetiredKept), as after a failed fetch without a panic. Counted
// unsaved, the retired CRL was not kept (it stayed a floor in its record,
// the safe side, under a note saying a restart drops it).
func TestPanicInAFailedCommitThenRetired(t *testing.T) {
	k := newKeptFixture(t)
	var armed atomic.Bool
	k.r = newRefresher(t, k.f.config(func(c *refresh.Config) {
		c.Store, c.Fetcher.MaxBytes, c.URLs, c.FailHard = store.New(k.dir), 1<<16, []string{k.dpX, k.b.url()}, false
		c.Logger = slog.New(testlog.PanicOn{Handler: slog.NewTextHandler(io.Discard, nil), Prefix: "crl refresh failed", Value: "unexpected value committing ", Armed: &armed})
	}))
	k.f.cdp.serve(k.part(t, k.dpX, 5, 5), "")
	k.b.serve(k.part(t, k.b.url(), 1), "")
	if err := k.r.StartupFetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	k.f.cdp.serve([]byte("not a CRL"), "")
	k.r.RefreshNow(context.Background())
	armed.Store(false)
	var ce *crl.Error
	if st := k.r.Status()[0]; st.URL != k.dpX || !errors.As(st.LastError, &ce) || ce.Kind != crl.KindPanic {
		t.Fatalf("the failed fetch's commit did not panic: %+v", st)
	}
	commit, err := k.r.Reconfigure([]string{k.b.url()}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	commit()
	for _, st := range k.r.Status() {
		if st.URL == k.dpX && !st.RetiredKept {
			t.Fatalf("%s retired after a commit that panicked on a failed fetch: %+v; want its CRL kept on disk (RetiredKept)", k.dpX, st)

		}
	}
	k.want(t, "retired", crl.Revoked)
}
