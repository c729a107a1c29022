package crl

import (
	"crypto/x509"
	"sync/atomic"
)

// Info describes the answer to a revocation query.
type Info struct {
	// Entry is the CRL entry when the serial is listed; zero otherwise.
	Entry
	// Issuer is the issuer's distinguished name; empty when unknown.
	Issuer string
	// Key is the issuer key looked up.
	Key IssuerKey
	// Source is the URL the issuer's CRL came from.
	Source string
	// Stale reports that the issuer's CRL is past its nextUpdate.
	Stale bool
	// FailedClosed reports that the certificate is refused because the
	// issuer's CRL is stale and fail-closed is set, not because it is listed.
	FailedClosed bool
}

// Snapshot is an immutable, versioned set of per-issuer indexes. It is safe
// for concurrent use.
type Snapshot struct {
	version uint64
	byKey   map[IssuerKey]*Index
	list    []*Index
}

// NewSnapshot returns a snapshot of the given indexes. When two share a key,
// the newer (see [Compare]) wins.
func NewSnapshot(version uint64, indexes ...*Index) *Snapshot {
	s := &Snapshot{version: version, byKey: make(map[IssuerKey]*Index, len(indexes))}
	for _, ix := range indexes {
		if ix == nil {
			continue
		}
		if cur, ok := s.byKey[ix.Key()]; ok && Compare(cur.meta, ix.meta) >= 0 {
			continue
		}
		s.byKey[ix.Key()] = ix
	}
	for _, ix := range indexes {
		if ix != nil && s.byKey[ix.Key()] == ix {
			s.list = append(s.list, ix)
		}
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

// Indexes returns the indexes, one per issuer, in the order given to
// NewSnapshot. The caller must not modify the slice.
func (s *Snapshot) Indexes() []*Index {
	if s == nil {
		return nil
	}
	return s.list
}

// Index returns the index of the issuer with key k, or nil.
func (s *Snapshot) Index(k IssuerKey) *Index {
	if s == nil {
		return nil
	}
	return s.find(k)
}

// find scans a short list (most deployments have a handful of issuers),
// which beats hashing a 32-byte key, and uses the map beyond that.
func (s *Snapshot) find(k IssuerKey) *Index {
	if len(s.list) <= 8 {
		for _, ix := range s.list {
			if ix.meta.Key == k {
				return ix
			}
		}
		return nil
	}
	return s.byKey[k]
}

// IsRevoked reports whether cert is revoked by its issuer's CRL: revoked is
// true when the serial is listed, or when the CRL is stale with fail-closed
// set (info.FailedClosed); known is false when no CRL of the issuer is held,
// in which case revoked is false and the caller's policy decides. The
// issuer is found by cert's RawIssuer and AuthorityKeyId (see
// [CertIssuerKey]); use IsRevokedKey with a key computed once per connection
// to skip the hash.
func (s *Snapshot) IsRevoked(cert *x509.Certificate) (revoked bool, info Info, known bool) {
	return s.IsRevokedKey(CertIssuerKey(cert), cert)
}

// IsRevokedKey is IsRevoked with the issuer key given. It does not allocate.
func (s *Snapshot) IsRevokedKey(k IssuerKey, cert *x509.Certificate) (revoked bool, info Info, known bool) {
	info.Key = k
	if s == nil {
		return false, info, false
	}
	ix := s.find(k)
	if ix == nil {
		return false, info, false
	}
	m := &ix.meta
	info.Issuer, info.Source, info.Stale = m.Issuer, m.Source, m.Stale
	if m.Stale && m.FailClosed {
		info.FailedClosed = true
		return true, info, true
	}
	e, ok := ix.Lookup(cert.SerialNumber)
	info.Entry = e
	return ok, info, true
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
