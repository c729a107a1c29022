package store_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

// TestSaveWritesTheDescriptionFirst: a record is two files, its DER and
// its description (which names its URL). A Save whose second write fails,
// as a crash between the two writes would leave it, must not leave a DER
// without a description: read at the start as the record of a URL no
// longer configured (Orphans), such a DER has no URL, so the refresher
// could not tell it is that URL's record when the URL is listed again, and
// saved that URL's next CRL over it (an older one, from a mirror that
// lags: the only copy of the newer CRL gone). On main the DER was written
// first: Orphans returned a record without a URL.
func TestSaveWritesTheDescriptionFirst(t *testing.T) {
	s := store.New(t.TempDir())
	const url = "http://pki.example.com/a.crl"
	if err := s.Save(store.Record{URL: "http://pki.example.com/other.crl", DER: []byte{0x30, 1}}); err != nil {
		t.Fatal(err) // creates the directory
	}
	// The description cannot be written: a directory where it goes.
	desc := descFile(t, s, url)
	if err := os.Mkdir(desc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(desc, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(store.Record{URL: url, DER: []byte{0x30, 2}}); err == nil {
		t.Fatal("Save with its description blocked: no error")
	}
	got, err := s.Orphans([]string{"http://pki.example.com/other.crl"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range got {
		if o.URL != url {
			t.Errorf("after a Save whose description failed: record %s without its URL (%q)", o.File, o.URL)
		}
	}
}

// TestRecordURLAfterACrash: the states a crash between a record's two
// writes leaves, read back. The description names the record's URL, and a
// record's file is named after its URL, so a description that no longer
// matches the DER (the DER of one write beside the description of the
// other) still tells whose record it is: Orphans keeps that URL, and drops
// the validators and the fetch time (the next download is unconditional).
// A description naming a URL whose record this is not (another record's,
// describing the same DER) is not believed. On main every mismatch lost
// the URL, and another record's description was believed.
func TestRecordURLAfterACrash(t *testing.T) {
	const url, other = "http://pki.example.com/a.crl", "http://pki.example.com/b.crl"
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		crash   func(t *testing.T, s *store.Store)
		wantURL string
	}{
		{"the DER of the next write, the description of the one before", func(t *testing.T, s *store.Store) {
			mustWriteFile(t, recordPath(s, url), []byte{0x30, 7})
		}, url},
		{"the description of the next write, the DER of the one before", func(t *testing.T, s *store.Store) {
			if err := s.Save(store.Record{URL: url, DER: []byte{0x30, 7}, FetchedAt: at}); err != nil {
				t.Fatal(err)
			}
			mustWriteFile(t, recordPath(s, url), []byte{0x30, 1})
		}, url},
		{"no description", func(t *testing.T, s *store.Store) {
			if err := os.Remove(descFile(t, s, url)); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"another record's description", func(t *testing.T, s *store.Store) {
			b, err := os.ReadFile(descFile(t, s, other))
			if err != nil {
				t.Fatal(err)
			}
			mustWriteFile(t, descFile(t, s, url), b)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := store.New(t.TempDir())
			for _, u := range []string{url, other} {
				if err := s.Save(store.Record{URL: u, DER: []byte{0x30, 1}, Validators: fetch.Validators{ETag: `"1"`}, FetchedAt: at}); err != nil {
					t.Fatal(err)
				}
			}
			tt.crash(t, s)
			got, err := s.Orphans([]string{other})
			if err != nil || len(got) != 1 {
				t.Fatalf("Orphans = %+v, %v; want a's record", got, err)
			}
			o := got[0]
			if o.URL != tt.wantURL || o.File != recordPath(s, url) || o.File != s.RecordFile(url) {
				t.Errorf("record %s: URL %q; want %q", o.File, o.URL, tt.wantURL)
			}
			if o.Validators != (fetch.Validators{}) || !o.FetchedAt.IsZero() {
				t.Errorf("record %s not matching its description: validators %+v fetched %v; want none", o.File, o.Validators, o.FetchedAt)
			}
		})
	}
}

// recordPath is the DER of url's record in s (named by the SHA-256 of
// the URL).
func recordPath(s *store.Store, url string) string {
	h := sha256.Sum256([]byte(url))
	return filepath.Join(s.Dir(), hex.EncodeToString(h[:16])+".crl")
}

// descFile is the description of url's record in s.
func descFile(t *testing.T, s *store.Store, url string) string {
	t.Helper()
	return strings.TrimSuffix(recordPath(s, url), ".crl") + ".json"
}

func mustWriteFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEmpty: a store is empty while it holds neither a URL's record nor
// a kept CRL (a description alone is no CRL); a missing directory is
// empty.
func TestEmpty(t *testing.T) {
	tests := []struct {
		name  string
		fill  func(t *testing.T, s *store.Store)
		empty bool
	}{
		{"no directory", func(*testing.T, *store.Store) {}, true},
		{"a description alone", func(t *testing.T, s *store.Store) {
			if err := os.MkdirAll(s.Dir(), 0o755); err != nil {
				t.Fatal(err)
			}
			mustWriteFile(t, descFile(t, s, "http://pki.example.com/a.crl"), []byte("{}"))
		}, true},
		{"a record", func(t *testing.T, s *store.Store) {
			if err := s.Save(store.Record{URL: "http://pki.example.com/a.crl", DER: []byte{0x30, 1}}); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"a kept CRL", func(t *testing.T, s *store.Store) {
			if err := s.SaveKept(crl.IssuerKey{}, "", store.Record{URL: "http://pki.example.com/a.crl", DER: []byte{0x30, 1}}); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := store.New(filepath.Join(t.TempDir(), "state"))
			tt.fill(t, s)
			if empty, err := s.Empty(); err != nil || empty != tt.empty {
				t.Fatalf("Empty = %v, %v; want %v", empty, err, tt.empty)
			}
		})
	}
}
