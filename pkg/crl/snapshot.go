package crl

import (
	"crypto/x509"
	"sync/atomic"
	"time"
)

// Info describes the answer to a revocation query.
type Info struct {
	// Entry is the CRL entry when the serial is listed; zero otherwise.
	Entry
	// Issuer is the issuer's distinguished name; empty when unknown.
	Issuer string
	// Key is the issuer key looked up.
	Key IssuerKey
	// Source is the URL the CRL the answer rests on came from.
	Source string
	// Partition is that CRL's scope (Meta.Partition); "" for a CRL of
	// every certificate.
	Partition string
	// NextUpdate is that CRL's nextUpdate; zero when absent.
	NextUpdate time.Time
	// Stale reports that the CRL is past its nextUpdate.
	Stale bool
	// FailedClosed reports that the certificate is refused because the
	// issuer's CRL is stale and fail-closed is set, not because it is listed.
	FailedClosed bool
	// Uncovered reports that CRLs of the issuer are held but none of them
	// covers the certificate: each is a partition naming distribution
	// points the certificate does not name (RFC 5280 6.3.3), or a CRL of
	// user certificates only and the certificate is a CA's.
	Uncovered bool
}

// Snapshot is an immutable, versioned set of per-issuer indexes: per issuer
// one index per scope (Meta.Partition). It is safe for concurrent use.
type Snapshot struct {
	version uint64
	// groups holds each issuer's indexes, issuers in the order of their
	// first index given to NewSnapshot.
	groups [][]*Index
	byKey  map[IssuerKey]int // into groups
	list   []*Index
}

// NewSnapshot returns a snapshot of the given indexes. When two share a key
// and a partition, the newer (see [Compare]) wins.
func NewSnapshot(version uint64, indexes ...*Index) *Snapshot {
	type id struct {
		k IssuerKey
		p string
	}
	win := make(map[id]*Index, len(indexes))
	for _, ix := range indexes {
		if ix == nil {
			continue
		}
		i := id{ix.Key(), ix.meta.Partition}
		if cur, ok := win[i]; ok && Compare(cur.meta, ix.meta) >= 0 {
			continue
		}
		win[i] = ix
	}
	s := &Snapshot{version: version, byKey: make(map[IssuerKey]int, len(win))}
	for _, ix := range indexes {
		if ix == nil || win[id{ix.Key(), ix.meta.Partition}] != ix {
			continue
		}
		s.list = append(s.list, ix)
		g, ok := s.byKey[ix.Key()]
		if !ok {
			g = len(s.groups)
			s.byKey[ix.Key()] = g
			s.groups = append(s.groups, nil)
		}
		s.groups[g] = append(s.groups[g], ix)
	}
	return s
}

// Version returns the snapshot's version; 0 is the empty snapshot a Set
// starts with.
func (s *Snapshot) Version() uint64 {
	if s == nil {
		return 0
	}
	return s.version
}

// Indexes returns the indexes, one per issuer and partition, in the order
// given to NewSnapshot. The caller must not modify the slice.
func (s *Snapshot) Indexes() []*Index {
	if s == nil {
		return nil
	}
	return s.list
}

// Index returns the first index of the issuer with key k (its only one
// unless the issuer partitions its CRLs), or nil.
func (s *Snapshot) Index(k IssuerKey) *Index {
	if s == nil {
		return nil
	}
	if g := s.find(k); len(g) > 0 {
		return g[0]
	}
	return nil
}

// Partitions returns every index of the issuer with key k, one per
// partition; the caller must not modify the slice.
func (s *Snapshot) Partitions(k IssuerKey) []*Index {
	if s == nil {
		return nil
	}
	return s.find(k)
}

// find returns the indexes of issuer k. It scans a short list (most
// deployments have a handful of issuers), which beats hashing a 32-byte
// key, and uses the map beyond that.
func (s *Snapshot) find(k IssuerKey) []*Index {
	if len(s.groups) <= 8 {
		for _, g := range s.groups {
			if g[0].meta.Key == k {
				return g
			}
		}
		return nil
	}
	if i, ok := s.byKey[k]; ok {
		return s.groups[i]
	}
	return nil
}

// findPartition returns the index of issuer k and partition p, or nil.
func (s *Snapshot) findPartition(k IssuerKey, p string) *Index {
	if s == nil {
		return nil
	}
	for _, ix := range s.find(k) {
		if ix.meta.Partition == p {
			return ix
		}
	}
	return nil
}

// IsRevoked reports whether cert is revoked by its issuer's CRLs: revoked is
// true when a CRL of the issuer lists the serial, or when every CRL covering
// it is stale with fail-closed set (info.FailedClosed); known is false when
// no CRL of the issuer covering cert is held (info.Uncovered when some of
// the issuer are), in which case revoked is false and the caller's policy
// decides. Staleness is the CRLs' Meta.Stale. The issuer is found by cert's
// RawIssuer and AuthorityKeyId (see [CertIssuerKey]); use IsRevokedKey with
// a key computed once per connection to skip the hash.
func (s *Snapshot) IsRevoked(cert *x509.Certificate) (revoked bool, info Info, known bool) {
	return s.IsRevokedKey(CertIssuerKey(cert), cert)
}

// IsRevokedKey is IsRevoked with the issuer key given. It does not allocate
// for an issuer with one CRL of every certificate.
func (s *Snapshot) IsRevokedKey(k IssuerKey, cert *x509.Certificate) (revoked bool, info Info, known bool) {
	info.Key = k
	if s == nil {
		return false, info, false
	}
	g := s.find(k)
	if g == nil {
		return false, info, false
	}
	v, ix, e := judge(g, cert, func(m *Meta) bool { return m.Stale })
	info.describe(ix)
	info.Stale = ix.meta.Stale
	switch v {
	case Revoked:
		info.Entry = e
		return true, info, true
	case Unknown:
		info.Uncovered = true
		return false, info, false
	case Stale:
		if ix.meta.FailClosed {
			info.FailedClosed = true
			return true, info, true
		}
	}
	return false, info, true
}

// describe fills in the issuer and the CRL the answer rests on.
func (i *Info) describe(ix *Index) {
	m := &ix.meta
	i.Issuer, i.Source, i.Partition, i.NextUpdate = m.Issuer, m.Source, m.Partition, m.NextUpdate
}

// judge is the verdict of an issuer's CRLs g on cert, and the index it
// rests on: Revoked when any of them lists the serial; else Good when a
// CRL covering cert is current (stale reports not), Stale when every one
// covering it is stale, Unknown when none covers it.
func judge(g []*Index, cert *x509.Certificate, stale func(*Meta) bool) (Verdict, *Index, Entry) {
	if len(g) == 1 && g[0].sc.all() {
		ix := g[0]
		if e, ok := ix.Lookup(cert.SerialNumber); ok {
			return Revoked, ix, e
		}
		if stale(&ix.meta) {
			return Stale, ix, Entry{}
		}
		return Good, ix, Entry{}
	}
	// The serial in the index form once, for every partition.
	var sb [64]byte
	if key, ok := serialKey(sb[:], cert.SerialNumber); ok {
		for _, ix := range g {
			if e, ok := ix.LookupBytes(key); ok {
				return Revoked, ix, e
			}
		}
	}
	// The certificate's names, read once, into buffers on the stack.
	var buf [512]byte
	var ends [8]int
	dps := dpNames{buf: buf[:0], ends: ends[:0]}
	read := false
	var staleIx *Index
	for _, ix := range g {
		if len(ix.sc.names) > 0 && !read {
			dps, read = dps.readCert(cert), true
		}
		if !ix.sc.covers(cert, dps) {
			continue
		}
		if !stale(&ix.meta) {
			return Good, ix, Entry{}
		}
		if staleIx == nil {
			staleIx = ix
		}
	}
	if staleIx != nil {
		return Stale, staleIx, Entry{}
	}
	return Unknown, g[0], Entry{}
}

// Set holds the current snapshot. Readers load it without a lock; a writer
// swaps in a new one. The zero Set holds no snapshot (every issuer unknown).
type Set struct {
	p atomic.Pointer[Snapshot]
}

// Load returns the current snapshot; nil before the first Store.
func (s *Set) Load() *Snapshot { return s.p.Load() }

// Store makes snap the current snapshot.
func (s *Set) Store(snap *Snapshot) { s.p.Store(snap) }

// IsRevoked answers from the current snapshot; see [Snapshot.IsRevoked].
func (s *Set) IsRevoked(cert *x509.Certificate) (revoked bool, info Info, known bool) {
	return s.p.Load().IsRevoked(cert)
}
