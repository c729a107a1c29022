package store_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

// TestSetKept: SetKept marks a URL's record as copied to the kept CRLs
// and keeps its DER, SetKept false unmarks it; Touch keeps the mark, the URL's next Save clears it,
// and a kept copy (SaveKept) never carries it. A URL without a record is
// ErrNotExist.
func TestSetKept(t *testing.T) {
	s := store.New(filepath.Join(t.TempDir(), "crl"))
	const u = "http://pki.example.com/a.crl"
	if err := s.SetKept(u, true); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("SetKept without a record: %v; want ErrNotExist", err)
	}
	at := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	if err := s.Save(store.Record{URL: u, DER: []byte{0x30, 1}, FetchedAt: at}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func() error
		want bool
	}{
		{"saved", func() error { return nil }, false},
		{"marked", func() error { return s.SetKept(u, true) }, true},
		{"touched", func() error { return s.Touch(u, fetch.Validators{ETag: `"e"`}, at.Add(time.Hour)) }, true},
		{"unmarked", func() error { return s.SetKept(u, false) }, false},
		{"marked again", func() error { return s.SetKept(u, true) }, true},
		{"saved again", func() error { return s.Save(store.Record{URL: u, DER: []byte{0x30, 2}, FetchedAt: at}) }, false},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		r, err := s.Load(u)
		if err != nil || r.Kept != st.want || len(r.DER) != 2 {
			t.Fatalf("%s: Load = kept %v DER %x, %v; want kept %v", st.name, r.Kept, r.DER, err, st.want)
		}
	}
	if err := s.SetKept(u, true); err != nil {
		t.Fatal(err)
	}
	r, _ := s.Load(u)
	if err := s.SaveKept(crl.IssuerKey{}, "", r); err != nil {
		t.Fatal(err)
	}
	kept, err := s.LoadKept()
	if err != nil || len(kept) != 1 || kept[0].Kept {
		t.Fatalf("LoadKept = %+v, %v; want one copy without the mark", kept, err)
	}
}
