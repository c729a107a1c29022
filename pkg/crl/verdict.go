package crl

import (
	"crypto/x509"
	"time"
)

// Policy is how a verdict treats what a CRL cannot vouch for.
type Policy struct {
	// FailClosedOnStale refuses every certificate of an issuer whose CRL is
	// past its nextUpdate (segmesh.crl.failClosedOnStale); false keeps using
	// the CRL as the last known good one. A CRL whose Meta.FailClosed is set
	// is treated as if this were true.
	FailClosedOnStale bool
	// RequireKnownIssuer refuses a certificate whose issuer has no CRL in
	// the snapshot (segmesh.crl.useCertificateCdps: its distribution point
	// must be fetched first); false lets it through, as SEG does for an
	// issuer whose CDP is not configured.
	RequireKnownIssuer bool
}

// Verdict is the revocation state of one certificate.
type Verdict int

// The verdicts of [Snapshot.Decide].
const (
	// Good means the issuer's CRL is held and does not list the serial.
	Good Verdict = iota + 1
	// Revoked means the issuer's CRL lists the serial.
	Revoked
	// Stale means the issuer's CRL is past its nextUpdate as judged by the
	// caller's clock; the certificate is not listed in it.
	Stale
	// Unknown means no CRL of the issuer is held.
	Unknown
)

// String returns the verdict as a lower-case word (a metric label).
func (v Verdict) String() string {
	switch v {
	case Good:
		return "good"
	case Revoked:
		return "revoked"
	case Stale:
		return "stale"
	case Unknown:
		return "unknown"
	}
	return "unspecified"
}

// Decision is the answer of [Snapshot.Decide].
type Decision struct {
	// Verdict is what the snapshot says about the certificate.
	Verdict Verdict
	// Refused reports whether the certificate must not be used under the
	// policy: always for Revoked, for Stale with fail-closed, for Unknown
	// with RequireKnownIssuer.
	Refused bool
	// Info describes the issuer's CRL and the entry; Info.Issuer is empty
	// when Verdict is Unknown.
	Info Info
}

// Decide is the one revocation verdict segmesh gives: the edge for every
// handshake and diagnose for its revocation step call it, so the two cannot
// disagree. The issuer is found by cert's RawIssuer and AuthorityKeyId (see
// [CertIssuerKey]) and, failing that, by its name alone. Staleness is
// judged against the CRL's nextUpdate at now, the caller's clock, whatever
// the crl role last said, so fail-closed holds while the crl role is
// unreachable. A nil snapshot knows no issuer.
func (s *Snapshot) Decide(cert *x509.Certificate, now time.Time, p Policy) Decision {
	return s.DecideKey(CertIssuerKey(cert), cert, now, p)
}

// DecideKey is Decide with the issuer key computed by the caller (once per
// connection).
func (s *Snapshot) DecideKey(k IssuerKey, cert *x509.Certificate, now time.Time, p Policy) Decision {
	ix := s.Index(k)
	if ix == nil {
		k = KeyOf(cert.RawIssuer, nil)
		ix = s.Index(k)
	}
	d := Decision{Info: Info{Key: k}}
	if ix == nil {
		d.Verdict, d.Refused = Unknown, p.RequireKnownIssuer
		return d
	}
	m := &ix.meta
	d.Info.Issuer, d.Info.Source = m.Issuer, m.Source
	if e, ok := ix.Lookup(cert.SerialNumber); ok {
		d.Info.Entry = e
		d.Verdict, d.Refused = Revoked, true
		return d
	}
	if StaleAt(m.NextUpdate, now) {
		d.Info.Stale = true
		d.Verdict = Stale
		if p.FailClosedOnStale || m.FailClosed {
			d.Refused, d.Info.FailedClosed = true, true
		}
		return d
	}
	d.Verdict = Good
	return d
}

// Rollback is an incoming CRL that [Merge] refused because the one held for
// its issuer is newer.
type Rollback struct {
	// Incoming is the refused CRL; Held the one kept in force.
	Incoming, Held Meta
}

// Merge returns the snapshot of version that puts in force, per issuer, the
// newer of held's CRL and the incoming one — by CRL number, else thisUpdate
// ([Compare]); the incoming one on a tie, as it carries the latest fetch
// time — so a CRL never goes back to an older one, whichever crl replica
// sent it. An issuer held but absent from incoming keeps its CRL unless drop
// (nil: never) reports that it left the configuration. The refused incoming
// CRLs are returned for the log and a metric.
func Merge(version uint64, held *Snapshot, incoming []*Index, drop func(Meta) bool) (*Snapshot, []Rollback) {
	var rollbacks []Rollback
	out := make([]*Index, 0, len(incoming)+len(held.Indexes()))
	seen := make(map[IssuerKey]bool, len(incoming))
	for _, in := range incoming {
		if in == nil {
			continue
		}
		seen[in.Key()] = true
		if cur := held.Index(in.Key()); cur != nil && Compare(in.meta, cur.meta) < 0 {
			rollbacks = append(rollbacks, Rollback{Incoming: in.meta, Held: cur.meta})
			out = append(out, cur)
			continue
		}
		out = append(out, in)
	}
	for _, cur := range held.Indexes() {
		if !seen[cur.Key()] && (drop == nil || !drop(cur.meta)) {
			out = append(out, cur)
		}
	}
	return NewSnapshot(version, out...), rollbacks
}
