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

	"github.com/segmesh/segmesh/pkg/crl"
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

// TestKept: a CRL kept per issuer and partition is saved apart from the
// URLs' records, replaced per issuer and partition, listed by LoadKept and
// removed by RemoveKept.
func TestKept(t *testing.T) {
	s := store.New(filepath.Join(t.TempDir(), "crl"))
	if recs, err := s.LoadKept(); err != nil || len(recs) != 0 {
		t.Fatalf("LoadKept on an empty store = %v, %v", recs, err)
	}
	var k1, k2 crl.IssuerKey
	k2[0] = 1
	const u = "http://pki.example.com/x.crl"
	for _, tc := range []struct {
		key  crl.IssuerKey
		part string
		der  []byte
	}{
		{k1, "uri:http://pki.example.com/x.crl", []byte{0x30, 1}},
		{k1, "uri:http://pki.example.com/x.crl", []byte{0x30, 2}}, // replaces the first
		{k1, "", []byte{0x30, 3}},
		{k2, "", []byte{0x30, 4}},
	} {
		if err := s.SaveKept(tc.key, tc.part, store.Record{URL: u, DER: tc.der}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Load(u); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a kept CRL shows as the URL's record: %v", err)
	}
	recs, err := s.LoadKept()
	if err != nil {
		t.Fatal(err)
	}
	got := map[byte]bool{}
	for _, r := range recs {
		if r.URL != u || len(r.DER) != 2 {
			t.Fatalf("LoadKept record %+v", r)
		}
		got[r.DER[1]] = true
	}
	if len(recs) != 3 || !got[2] || !got[3] || !got[4] {
		t.Fatalf("LoadKept = %d records %v; want the three kept, the replaced one gone", len(recs), got)
	}
	if _, err := os.Stat(s.KeptPath(k1, "")); err != nil {
		t.Fatalf("KeptPath: %v", err)
	}
	if err := s.RemoveKept(k1, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveKept(k1, ""); err != nil {
		t.Fatalf("RemoveKept of nothing: %v", err)
	}
	if recs, _ := s.LoadKept(); len(recs) != 2 {
		t.Fatalf("after RemoveKept: %d records; want 2", len(recs))
	}
}
