package store

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/segmesh/segmesh/pkg/atomicfile"
	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
	"github.com/segmesh/segmesh/pkg/safefile"
)

// Record is one stored CRL.
type Record struct {
	// URL is the distribution point.
	URL string `json:"url"`
	// DER is the CRL.
	DER []byte `json:"-"`
	// Validators are the HTTP validators DER was served with.
	Validators fetch.Validators `json:"validators"`
	// FetchedAt is when DER was downloaded or last confirmed unchanged.
	FetchedAt time.Time `json:"fetchedAt"`
	// SHA256 is the hex SHA-256 of DER; set by Save.
	SHA256 string `json:"sha256"`
	// Retired marks a kept CRL (SaveKept) of a distribution point a reload
	// removed, rather than one it displaced; it only changes how the CRL
	// is described to the admin, never whether it is in force.
	Retired bool `json:"retired,omitempty"`
	// Learnt marks a kept CRL of a distribution point learnt from a
	// certificate (segmesh.crl.useCertificateCdps), which a restart
	// forgets; like Retired, it only changes how the CRL is described.
	Learnt bool `json:"learnt,omitempty"`
	// Kept marks a URL's record whose CRL was copied to the kept CRLs
	// (SetKept): the kept copy, not the record, is what a start puts in
	// force, so that removing the kept file (the documented way to drop
	// it) does drop it. A Save of the URL's next CRL clears it.
	Kept bool `json:"kept,omitempty"`
}

// Store is a directory of CRLs. It is safe for concurrent use on distinct
// URLs; one URL must not be saved concurrently.
type Store struct {
	dir string
}

// New returns the store in dir. It does no I/O: the directory is created on
// the first Save.
func New(dir string) *Store { return &Store{dir: dir} }

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) base(url string) string {
	h := sha256.Sum256([]byte(url))
	return filepath.Join(s.dir, hex.EncodeToString(h[:16]))
}

// Save writes r atomically, its description first, then its DER (see
// write). Errors are *crl.Error of kind KindStore.
func (s *Store) Save(r Record) error {
	if err := os.MkdirAll(s.dir, dirMode); err != nil {
		return storeErr(r.URL, err)
	}
	return s.write(s.base(r.URL), r)
}

// RecordFile returns the file of url's record's DER: the name Orphan.File
// gives it, and the one a start names a record by when its description
// does not say whose it is.
func (s *Store) RecordFile(url string) string { return s.base(url) + ".crl" }

// write writes r's description to base.json, then its DER to base.crl. In
// that order a crash between the two writes never leaves a DER without a
// description naming its URL: a first write leaves only the description
// (no record: Load and Orphans list DERs), a later one the DER before
// beside the new description, whose URL read still believes (the file is
// named after it). DER first, a record's first write cut short left a DER
// whose URL nothing named, so a start read it as a floor of no known URL,
// and that URL listed again saved its next CRL over it
// (TestSaveWritesTheDescriptionFirst).
func (s *Store) write(base string, r Record) error {
	sum := sha256.Sum256(r.DER)
	r.SHA256 = hex.EncodeToString(sum[:])
	meta, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return storeErr(r.URL, err)
	}
	if err := writeAtomic(base+".json", append(meta, '\n')); err != nil {
		return storeErr(r.URL, err)
	}
	if err := writeAtomic(base+".crl", r.DER); err != nil {
		return storeErr(r.URL, err)
	}
	return nil
}

// Touch records that the CRL stored for r.URL was confirmed unchanged at
// fetchedAt with validators v, rewriting only the description.
func (s *Store) Touch(url string, v fetch.Validators, fetchedAt time.Time) error {
	return s.describe(url, func(r *Record) { r.Validators, r.FetchedAt = v, fetchedAt })
}

// SetKept records whether the CRL stored for url is also held by the kept
// CRLs (SaveKept), rewriting only the description (Record.Kept).
func (s *Store) SetKept(url string, kept bool) error {
	return s.describe(url, func(r *Record) { r.Kept = kept })
}

// describe rewrites the description of url's record with change applied.
func (s *Store) describe(url string, change func(*Record)) error {
	r, err := s.readMeta(url)
	if err != nil {
		return err
	}
	change(&r)
	meta, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return storeErr(url, err)
	}
	if err := writeAtomic(s.base(url)+".json", append(meta, '\n')); err != nil {
		return storeErr(url, err)
	}
	return nil
}

// Load returns the CRL stored for url. It reports fs.ErrNotExist (wrapped)
// when there is none. A DER whose description is missing, unreadable or does
// not match it comes back without validators or fetch time, so the next
// download is unconditional.
func (s *Store) Load(url string) (Record, error) {
	return s.read(s.base(url), url, true)
}

// read returns the record at base; url, when not empty, must be the one
// its description names, and so must base's own URL when named (a URL's
// record, whose files are named after its URL, unlike a kept CRL's). A
// description of another write of the same record, not matching the DER
// (a crash between the two writes, see write), gives only its URL. The
// DER is read through pkg/safefile, bounded as a download is
// (fetch.DefaultMaxBytes).
func (s *Store) read(base, url string, named bool) (Record, error) {
	der, err := safefile.Read(base+".crl", fetch.DefaultMaxBytes)
	if err != nil {
		return Record{}, storeErr(cmp.Or(url, base), err)
	}
	sum := sha256.Sum256(der)
	hexSum := hex.EncodeToString(sum[:])
	r, err := readMeta(base, url)
	if err != nil || url != "" && r.URL != url || named && s.base(r.URL) != base {
		return Record{URL: url, DER: der, SHA256: hexSum}, nil // no description of this record
	}
	if r.SHA256 != hexSum {
		return Record{URL: r.URL, DER: der, SHA256: hexSum}, nil
	}
	r.DER = der
	return r, nil
}

func (s *Store) readMeta(url string) (Record, error) { return readMeta(s.base(url), url) }

// maxDescription bounds a record's description (<name>.json): a URL,
// two validators and a time take well under a kilobyte.
const maxDescription = 64 << 10

// readMeta reads the description at base.json. The store's own files are
// read, as every file an admin names, through pkg/safefile (bounded,
// regular files only, opened without blocking): whoever can write the
// state directory could otherwise make a start block on a FIFO there or
// read a link to /dev/zero without end.
func readMeta(base, url string) (Record, error) {
	b, err := safefile.Read(base+".json", maxDescription)
	if err != nil {
		return Record{}, storeErr(url, err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, storeErr(url, fmt.Errorf("description: %w", err))
	}
	return r, nil
}

// Remove deletes what is stored for url; nothing stored is not an error.
func (s *Store) Remove(url string) error { return s.remove(s.base(url), url) }

func storeErr(url string, err error) error {
	return &crl.Error{URL: url, Kind: crl.KindStore, Err: err}
}

// dirMode is the mode of the directories the store makes: its own user
// only. Whoever else may write them removes a floor or plants an older
// CRL (the crl role refuses such a directory: safefile.CheckDir).
const dirMode = 0o700

// writeAtomic replaces path with data (mode 0644: CRLs are public); the
// directory is synced too, so a write is durable when it returns.
func writeAtomic(path string, data []byte) error {
	return atomicfile.Write(path, data, 0o644, nil)
}
