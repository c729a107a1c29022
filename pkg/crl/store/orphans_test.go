package store_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

// TestOrphans: the records of every URL but those given come back, each
// with its file, kept CRLs and temporary files never; RemoveOrphan
// deletes one record (both files). A store never written has none.
func TestOrphans(t *testing.T) {
	s := store.New(filepath.Join(t.TempDir(), "crl"))
	if got, err := s.Orphans(nil); err != nil || len(got) != 0 {
		t.Fatalf("Orphans of a store never written = %v, %v", got, err)
	}
	const a, b, c = "http://pki.example.com/a.crl", "http://pki.example.com/b.crl", "http://pki.example.com/c.crl"
	for i, u := range []string{a, b, c} {
		if err := s.Save(store.Record{URL: u, DER: []byte{0x30, byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveKept(crl.IssuerKey{}, "", store.Record{URL: "http://pki.example.com/kept.crl", DER: []byte{0x30, 9}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), ".x.crl.tmp-1"), []byte{0x30}, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		listed []string
		want   map[string]bool
	}{
		{nil, map[string]bool{a: true, b: true, c: true}},
		{[]string{a, c}, map[string]bool{b: true}},
		{[]string{a, b, c, "http://pki.example.com/never.crl"}, map[string]bool{}},
	}
	for _, tt := range tests {
		got, err := s.Orphans(tt.listed)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tt.want) {
			t.Fatalf("Orphans(%v) = %d records; want %v", tt.listed, len(got), tt.want)
		}
		for _, o := range got {
			if !tt.want[o.URL] || filepath.Dir(o.File) != s.Dir() || len(o.DER) != 2 {
				t.Errorf("Orphans(%v): record %q file %q DER %x; want one of %v", tt.listed, o.URL, o.File, o.DER, tt.want)
			}
		}
	}
	got, err := s.Orphans([]string{a, c})
	if err != nil || len(got) != 1 {
		t.Fatalf("Orphans = %v, %v", got, err)
	}
	if err := s.RemoveOrphan(got[0].File); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(b); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load after RemoveOrphan: %v; want ErrNotExist", err)
	}
	if got, _ := s.Orphans(nil); len(got) != 2 {
		t.Fatalf("after RemoveOrphan: %d records; want 2", len(got))
	}
	if recs, _ := s.LoadKept(); len(recs) != 1 {
		t.Fatalf("kept CRLs after RemoveOrphan: %d; want 1", len(recs))
	}
}

// TestKeptInADirectoryWithGlobCharacters: a state directory whose path
// holds a glob metacharacter ("[", "*", "?": a legal directory name).
// LoadKept read kept/ through filepath.Glob, which took the path as a
// pattern: "[" made it fail (ErrBadPattern) and "*" could match another
// directory's files, so a restart put no kept CRL in force, and an older
// CRL of its partition could decide (failed on main: no kept CRL loaded).
func TestKeptInADirectoryWithGlobCharacters(t *testing.T) {
	for _, name := range []string{"crl[1]", "crl*", "crl?"} {
		t.Run(name, func(t *testing.T) {
			s := store.New(filepath.Join(t.TempDir(), name))
			if err := s.SaveKept(crl.IssuerKey{}, "", store.Record{URL: "http://pki.example.com/x.crl", DER: []byte{0x30, 1}}); err != nil {
				t.Fatal(err)
			}
			recs, err := s.LoadKept()
			if err != nil || len(recs) != 1 || recs[0].URL != "http://pki.example.com/x.crl" {
				t.Fatalf("LoadKept = %+v, %v; want the one kept CRL", recs, err)
			}
		})
	}
}
