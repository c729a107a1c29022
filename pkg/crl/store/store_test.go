package store_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl/fetch"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "crl")
	s := store.New(dir)
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	const u = "http://pki.example.com/CertEnroll/CA.crl"
	if _, err := s.Load(u); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load before Save: %v, want ErrNotExist", err)
	}
	v := fetch.Validators{ETag: `"e1"`, LastModified: "Wed, 25 Nov 2026 12:00:00 GMT"}
	if err := s.Save(store.Record{URL: u, DER: []byte{0x30, 1, 2}, Validators: v, FetchedAt: at}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Load(u)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.DER, []byte{0x30, 1, 2}) || r.Validators != v || !r.FetchedAt.Equal(at) || r.URL != u {
		t.Fatalf("Load = %+v", r)
	}
	// Replace: the new DER and validators win, no temporary files remain.
	if err := s.Save(store.Record{URL: u, DER: []byte{0x30, 9}, Validators: fetch.Validators{ETag: `"e2"`}, FetchedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(u, fetch.Validators{ETag: `"e3"`}, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	r, err = s.Load(u)
	if err != nil || !bytes.Equal(r.DER, []byte{0x30, 9}) || r.Validators.ETag != `"e3"` || !r.FetchedAt.Equal(at.Add(time.Hour)) {
		t.Fatalf("after replace and touch: %+v, %v", r, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
	if len(entries) != 2 {
		t.Fatalf("%d files, want 2", len(entries))
	}
	// A description that no longer matches the DER is ignored, not trusted.
	var crlFile string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".crl") {
			crlFile = filepath.Join(dir, e.Name())
		}
	}
	if err := os.WriteFile(crlFile, []byte{0x30, 7, 7}, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = s.Load(u)
	if err != nil || r.Validators != (fetch.Validators{}) || !r.FetchedAt.IsZero() || !bytes.Equal(r.DER, []byte{0x30, 7, 7}) {
		t.Fatalf("mismatched description: %+v, %v", r, err)
	}
	if err := s.Remove(u); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(u); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load after Remove: %v", err)
	}
	if err := s.Remove(u); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestSaveUnwritable(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := store.New(filepath.Join(blocker, "sub"))
	err := s.Save(store.Record{URL: "http://x/ca.crl", DER: []byte{0x30, 0}})
	if err == nil || !strings.Contains(err.Error(), "http://x/ca.crl") {
		t.Fatalf("Save under a file: %v, want an error naming the URL", err)
	}
}
