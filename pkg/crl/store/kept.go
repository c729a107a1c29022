package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/segmesh/segmesh/pkg/crl"
)

// keptDir is the subdirectory of the kept CRLs.
const keptDir = "kept"

// KeptPath returns the path of the DER kept for the issuer with key k and
// the partition p (crl.Meta.Partition), for messages that tell an admin
// which file to remove.
func (s *Store) KeptPath(k crl.IssuerKey, partition string) string {
	return s.keptBase(k, partition) + ".crl"
}

func (s *Store) keptBase(k crl.IssuerKey, partition string) string {
	h := sha256.New()
	h.Write(k[:])
	h.Write([]byte{0})
	h.Write([]byte(partition))
	return filepath.Join(s.dir, keptDir, hex.EncodeToString(h.Sum(nil)[:16]))
}

// SaveKept writes r as the CRL kept in force for the issuer with key k and
// partition p, replacing the one kept for them (r.URL names where it came
// from). A kept CRL is the newest CRL of its issuer and partition that no
// configured URL's record holds: one a distribution point gave before it
// gave a CRL of another issuer or partition, or (r.Retired) the last one
// of a distribution point a reload removed. It is written the same
// way as Save's.
func (s *Store) SaveKept(k crl.IssuerKey, partition string, r Record) error {
	if err := os.MkdirAll(filepath.Join(s.dir, keptDir), dirMode); err != nil {
		return storeErr(r.URL, err)
	}
	r.Kept = false // a record's mark (SetKept), not the kept copy's
	return s.write(s.keptBase(k, partition), r)
}

// LoadKept returns every kept CRL (none when nothing was kept), unverified:
// the caller verifies each and learns its issuer and partition from it. A
// DER whose description is missing or does not match it comes back with
// only its DER.
func (s *Store) LoadKept() ([]Record, error) {
	names, err := crlFiles(filepath.Join(s.dir, keptDir))
	if err != nil {
		return nil, storeErr(s.dir, err)
	}
	var out []Record
	var errs []error
	for _, n := range names {
		r, err := s.read(strings.TrimSuffix(n, ".crl"), "", false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// RemoveKept deletes the CRL kept for the issuer with key k and partition
// p; nothing kept is not an error.
func (s *Store) RemoveKept(k crl.IssuerKey, partition string) error {
	return s.remove(s.keptBase(k, partition), fmt.Sprintf("kept CRL of issuer %s partition %q", k, partition))
}

// remove deletes base's two files, the DER first: a crash between the
// two leaves a description alone, which nothing lists, never a DER
// without its description (see write). A record removed to drop its CRL
// (loadFloors) stays dropped.
func (s *Store) remove(base, what string) error {
	for _, p := range []string{base + ".crl", base + ".json"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return storeErr(what, err)
		}
	}
	return nil
}

// Orphan is a URL's record (Save) of a URL not among those Orphans was
// given: a distribution point removed from the configuration, or one
// learnt from a certificate in an earlier run.
type Orphan struct {
	Record
	// File is the record's DER, for messages and RemoveOrphan.
	File string
}

// Orphans returns the URLs' records of every URL but urls, unverified
// (the caller verifies each), ordered by file name. A record whose
// description is missing or does not match its DER comes back with only
// its DER.
func (s *Store) Orphans(urls []string) ([]Orphan, error) {
	names, err := crlFiles(s.dir)
	if err != nil {
		return nil, storeErr(s.dir, err)
	}
	skip := map[string]bool{}
	for _, u := range urls {
		skip[s.base(u)+".crl"] = true
	}
	var out []Orphan
	var errs []error
	for _, n := range names {
		if skip[n] {
			continue
		}
		r, err := s.read(strings.TrimSuffix(n, ".crl"), "", true)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, Orphan{Record: r, File: n})
	}
	return out, errors.Join(errs...)
}

// RemoveOrphan deletes the record whose DER is file (Orphan.File).
func (s *Store) RemoveOrphan(file string) error {
	return s.remove(strings.TrimSuffix(file, ".crl"), file)
}

// Empty reports whether the store holds no CRL at all: no URL's record
// and no kept CRL (a directory that does not exist is empty). A start on
// an empty store is a first start, or one whose state directory was
// changed, emptied or lost: no floor of an earlier run is in force.
func (s *Store) Empty() (bool, error) {
	for _, dir := range []string{s.dir, filepath.Join(s.dir, keptDir)} {
		names, err := crlFiles(dir)
		if err != nil {
			return false, storeErr(dir, err)
		}
		if len(names) > 0 {
			return false, nil
		}
	}
	return true, nil
}

// crlFiles returns the regular files of dir named *.crl, sorted; none when
// dir does not exist. It lists the directory rather than globbing its
// path, which may hold a glob metacharacter.
func crlFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range entries { // sorted by name
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".crl") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}
