package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
	"github.com/segmesh/segmesh/pkg/crl/store"
	"github.com/segmesh/segmesh/pkg/safefile"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// TestAttackStateFilesNotRegular: the store reads its own state directory
// at every start (Load, Orphans, the kept CRLs) and at every refresh
// (Touch, SetKept). A record's DER (<name>.crl) or description
// (<name>.json) replaced by a FIFO without a writer (a plain open blocks
// for ever: the start hangs), a link to /dev/zero (read without end, until
// the process is killed for its memory) or a directory is refused at once:
// the DER as a store error saying it is not a regular file, the
// description as a missing one (the CRL comes back without validators, so
// the next download is unconditional). On main os.ReadFile blocked on the
// FIFO and read /dev/zero without end.
func TestAttackStateFilesNotRegular(t *testing.T) {
	const url = "http://pki.corp.example/ca.crl"
	for _, ext := range []string{".crl", ".json"} {
		for _, kind := range safefiletest.Kinds() {
			t.Run(ext+"/"+string(kind), func(t *testing.T) {
				dir := t.TempDir()
				s := store.New(dir)
				v := fetch.Validators{ETag: `"1"`}
				if err := s.Save(store.Record{URL: url, DER: []byte("the DER"), Validators: v, FetchedAt: time.Unix(1, 0)}); err != nil {
					t.Fatal(err)
				}
				crls, err := filepath.Glob(filepath.Join(dir, "*.crl"))
				if err != nil || len(crls) != 1 {
					t.Fatalf("stored files %v, %v; want one .crl", crls, err)
				}
				p := strings.TrimSuffix(crls[0], ".crl") + ext
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				unblock := safefiletest.Make(t, kind, p)
				var r store.Record
				safefiletest.Within(t, "Load", unblock, func() { r, err = s.Load(url) })
				if ext == ".crl" {
					if ce, ok := errors.AsType[*crl.Error](err); !ok || ce.Kind != crl.KindStore || !errors.Is(err, safefile.ErrNotRegular) {
						t.Fatalf("Load = %v; want a store error saying the DER is not a regular file", err)
					}
					return
				}
				if err != nil || string(r.DER) != "the DER" || r.Validators != (fetch.Validators{}) {
					t.Fatalf("Load = %+v, %v; want the DER without validators (the description refused)", r, err)
				}
				safefiletest.Within(t, "Touch", unblock, func() { err = s.Touch(url, v, time.Unix(2, 0)) })
				if !errors.Is(err, safefile.ErrNotRegular) {
					t.Fatalf("Touch = %v; want the description refused as not a regular file", err)
				}
			})
		}
	}
}
