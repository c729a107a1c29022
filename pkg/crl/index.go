package crl

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"iter"
	"math"
	"math/big"
	"time"
	"unsafe"
)

// Entry is what a CRL says about one revoked serial.
type Entry struct {
	// RevokedAt is the entry's revocationDate, to the second.
	RevokedAt time.Time
	// Reason is the CRLReason code (RFC 5280 section 5.3.1); 0 (unspecified)
	// when the entry carries none, 255 when it is outside 0..254.
	Reason int
}

// Meta describes the CRL behind an [Index].
type Meta struct {
	// Key identifies the issuer; the zero key is allowed but matches no
	// certificate.
	Key IssuerKey
	// Issuer is the issuer's distinguished name, for logs.
	Issuer string
	// Source is the URL (or file) the CRL came from; empty when unknown.
	Source string
	// Number is the CRL number extension; nil when absent.
	Number *big.Int
	// ThisUpdate is the CRL's thisUpdate.
	ThisUpdate time.Time
	// NextUpdate is the CRL's nextUpdate; zero when absent (never stale).
	NextUpdate time.Time
	// FetchedAt is when the CRL was last downloaded or confirmed unchanged;
	// zero when never (loaded from disk).
	FetchedAt time.Time
	// Stale reports that NextUpdate has passed and the CRL is kept as the
	// last known good one.
	Stale bool
	// FailClosed reports that every certificate of this issuer is refused
	// while Stale.
	FailClosed bool
	// Partition is the CRL's scope among its issuer's CRLs (partition.go):
	// "" for a CRL of every certificate of the issuer (no Issuing
	// Distribution Point naming a distribution point); else the names of
	// the distribution point whose certificates it covers, and
	// ScopeUserCertsOnly. CRLs are held, and compared by number, per issuer
	// and partition.
	Partition string
}

// Index is the immutable set of revoked serials of one issuer. Lookups do not
// allocate and take no lock; an Index is safe for concurrent use.
//
// Layout: one 32-byte record per entry holds the serial itself (up to 20
// bytes, the RFC 5280 maximum; longer ones go to a side arena), its time
// and its reason, and an open-addressing table of 64-bit slots (32-bit hash
// tag, 32-bit entry number) at a load factor of at most 1/2 finds them. A
// miss, the common case, usually reads one cache line of the table, a hit
// two (the slot and the record); 48 bytes per entry in all
// (docs/benchmarks.md, section CRL, compares it with a Go map and a sorted
// slice).
type Index struct {
	meta Meta
	sc   scope // meta.Partition, parsed
	t    *table
}

type table struct {
	seed   maphash.Seed
	slots  []uint64 // hash tag<<32 | entry number+1; 0 is empty
	mask   uint64
	recs   []rec
	arena  []byte // serials longer than inlineSerial
	unique int
}

// inlineSerial is the longest serial stored in its record.
const inlineSerial = 20

// rec is one entry, 32 bytes (two per cache line).
type rec struct {
	at     int64              // unix seconds
	serial [inlineSerial]byte // the serial, or its arena offset (little-endian uint32) when n > inlineSerial
	n      uint16             // serial length
	reason uint8
	_      uint8
}

// maxSerial is the longest serial an Index holds.
const maxSerial = math.MaxUint16

// Builder collects revoked serials for a new [Index]. It is not safe for
// concurrent use; Build may be called once.
type Builder struct {
	arena []byte
	recs  []rec
}

// NewBuilder returns a Builder sized for about n entries; n is a hint and
// may be 0. serialBytes, the serials' total length, is a hint too: only
// serials over 20 bytes take room beyond their record, so nothing is
// reserved for them up front.
func NewBuilder(n, serialBytes int) *Builder {
	_ = serialBytes
	return &Builder{recs: make([]rec, 0, max(n, 0))}
}

// Add records a revoked serial in the index form ([SerialBytes]; leading
// zero bytes are ignored). A serial added twice keeps its first entry; one
// longer than 65,535 bytes is ignored (no certificate has one).
func (b *Builder) Add(serial []byte, revokedAt time.Time, reason int) {
	b.add(serial, revokedAt.Unix(), reason)
}

func (b *Builder) add(serial []byte, at int64, reason int) {
	for len(serial) > 0 && serial[0] == 0 {
		serial = serial[1:]
	}
	if len(serial) > maxSerial || len(b.recs) >= maxEntries ||
		len(serial) > inlineSerial && len(b.arena)+len(serial) > math.MaxUint32 {
		return
	}
	if reason < 0 || reason > 254 {
		reason = 255
	}
	r := rec{at: at, n: uint16(len(serial)), reason: uint8(reason)}
	if len(serial) <= inlineSerial {
		copy(r.serial[:], serial)
	} else {
		binary.LittleEndian.PutUint32(r.serial[:4], uint32(len(b.arena)))
		b.arena = append(b.arena, serial...)
	}
	b.recs = append(b.recs, r)
}

// Len returns the number of serials added so far, duplicates included.
func (b *Builder) Len() int { return len(b.recs) }

// Build returns the Index of the serials added, described by m.
func (b *Builder) Build(m Meta) *Index {
	n := len(b.recs)
	size := 8
	for size < 2*n {
		size <<= 1
	}
	t := &table{
		seed:  maphash.MakeSeed(),
		slots: make([]uint64, size),
		mask:  uint64(size - 1),
		arena: b.arena,
		recs:  b.recs,
	}
	for i := range n {
		key := t.key(i)
		h := maphash.Bytes(t.seed, key)
		tag := h >> 32
		j := h & t.mask
		dup := false
		for s := t.slots[j]; s != 0; s = t.slots[j] {
			if s>>32 == tag && bytes.Equal(t.key(int(uint32(s)-1)), key) {
				dup = true
				break
			}
			j = (j + 1) & t.mask
		}
		if !dup {
			t.slots[j] = tag<<32 | uint64(i+1)
			t.unique++
		}
	}
	*b = Builder{}
	return &Index{meta: m, sc: parseScope(m.Partition), t: t}
}

func (t *table) key(i int) []byte {
	r := &t.recs[i]
	if r.n <= inlineSerial {
		return r.serial[:r.n]
	}
	off := binary.LittleEndian.Uint32(r.serial[:4])
	return t.arena[off : off+uint32(r.n)]
}

// find returns the entry number of key, or -1.
func (t *table) find(key []byte) int {
	h := maphash.Bytes(t.seed, key)
	tag := h >> 32
	j := h & t.mask
	for {
		s := t.slots[j]
		if s == 0 {
			return -1
		}
		if s>>32 == tag {
			i := int(uint32(s) - 1)
			if bytes.Equal(t.key(i), key) {
				return i
			}
		}
		j = (j + 1) & t.mask
	}
}

func (t *table) entry(i int) Entry {
	r := &t.recs[i]
	return Entry{RevokedAt: time.Unix(r.at, 0).UTC(), Reason: int(r.reason)}
}

// Meta returns the description of the CRL behind ix.
func (ix *Index) Meta() Meta { return ix.meta }

// Key returns the issuer key.
func (ix *Index) Key() IssuerKey { return ix.meta.Key }

// WithMeta returns an Index sharing ix's serials, described by m (for
// example with Stale set once NextUpdate has passed).
func (ix *Index) WithMeta(m Meta) *Index {
	return &Index{meta: m, sc: parseScope(m.Partition), t: ix.t}
}

// Len returns the number of distinct revoked serials.
func (ix *Index) Len() int { return ix.t.unique }

// Lookup reports whether serial is listed, and its entry. It does not
// allocate for serials up to 64 bytes; a negative serial is never listed.
func (ix *Index) Lookup(serial *big.Int) (Entry, bool) {
	var buf [64]byte
	key, ok := serialKey(buf[:], serial)
	if !ok {
		return Entry{}, false
	}
	return ix.LookupBytes(key)
}

// LookupBytes is Lookup for a serial in the index form ([SerialBytes]).
func (ix *Index) LookupBytes(serial []byte) (Entry, bool) {
	for len(serial) > 0 && serial[0] == 0 {
		serial = serial[1:]
	}
	i := ix.t.find(serial)
	if i < 0 {
		return Entry{}, false
	}
	return ix.t.entry(i), true
}

// All yields every distinct serial (index form) with its entry, in CRL
// order. The serial slices alias the index's memory: they stay valid as long
// as the index and must not be modified.
func (ix *Index) All() iter.Seq2[[]byte, Entry] {
	return func(yield func([]byte, Entry) bool) {
		t := ix.t
		for i := range len(t.recs) {
			key := t.key(i)
			if t.unique != len(t.recs) && t.find(key) != i {
				continue // a later duplicate
			}
			if !yield(key, t.entry(i)) {
				return
			}
		}
	}
}

// Bytes returns the approximate heap size of the index's arrays.
func (ix *Index) Bytes() int {
	t := ix.t
	return cap(t.slots)*8 + cap(t.arena) + cap(t.recs)*int(unsafe.Sizeof(rec{}))
}

// StaleAt reports whether a CRL with this nextUpdate is stale at now.
func StaleAt(nextUpdate, now time.Time) bool {
	return !nextUpdate.IsZero() && now.After(nextUpdate)
}

// maxEntries is the most entries one Index can hold (32-bit entry numbers).
const maxEntries = math.MaxUint32 - 1
