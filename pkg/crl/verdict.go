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
//
// An issuer that partitions its CRLs (an Issuing Distribution Point naming
// a distribution point; partition.go) has one CRL per partition: the
// certificate is Revoked when any of them lists it; else Good when a
// current one covers it (its scope names one of the certificate's CRL
// distribution points, or is every certificate), Stale when every one
// covering it is past nextUpdate, and Unknown with Info.Uncovered, refused
// whatever the policy, when none covers it: the issuer's CRLs are held,
// so segmesh knows the CA and that none of them speaks for this
// certificate; its distribution point must be configured (or learnt).
func (s *Snapshot) DecideKey(k IssuerKey, cert *x509.Certificate, now time.Time, p Policy) Decision {
	g := s.Partitions(k)
	if g == nil {
		k = KeyOf(cert.RawIssuer, nil)
		g = s.Partitions(k)
	}
	d := Decision{Info: Info{Key: k}}
	if g == nil {
		d.Verdict, d.Refused = Unknown, p.RequireKnownIssuer
		return d
	}
	v, ix, e := judge(g, cert, func(m *Meta) bool { return StaleAt(m.NextUpdate, now) })
	d.Info.describe(ix)
	d.Verdict = v
	switch v {
	case Revoked:
		d.Info.Entry = e
		d.Refused = true
	case Stale:
		d.Info.Stale = true
		if p.FailClosedOnStale || ix.meta.FailClosed {
			d.Refused, d.Info.FailedClosed = true, true
		}
	case Unknown:
		d.Info.Uncovered = true
		d.Refused = true
	}
	return d
}

// Rollback is an incoming CRL that [Merge] refused because the one held for
// its issuer and partition is newer.
type Rollback struct {
	// Incoming is the refused CRL; Held the one kept in force.
	Incoming, Held Meta
}

// Merge returns the snapshot of version that puts in force, per issuer and
// partition (Meta.Partition: CRL numbers run per partition), the newer of
// held's CRL and the incoming one — by CRL number, else thisUpdate
// ([Compare]); the incoming one on a tie, as it carries the latest fetch
// time — so a CRL never goes back to an older one, whichever crl replica
// sent it. A partition held but absent from incoming keeps its CRL unless drop
// (nil: never) reports that it left the configuration. The refused incoming
// CRLs are returned for the log and a metric.
func Merge(version uint64, held *Snapshot, incoming []*Index, drop func(Meta) bool) (*Snapshot, []Rollback) {
	var rollbacks []Rollback
	out := make([]*Index, 0, len(incoming)+len(held.Indexes()))
	type id struct {
		k IssuerKey
		p string
	}
	seen := make(map[id]bool, len(incoming))
	for _, in := range incoming {
		if in == nil {
			continue
		}
		seen[id{in.Key(), in.meta.Partition}] = true
		if cur := held.findPartition(in.Key(), in.meta.Partition); cur != nil && Compare(in.meta, cur.meta) < 0 {
			rollbacks = append(rollbacks, Rollback{Incoming: in.meta, Held: cur.meta})
			out = append(out, cur)
			continue
		}
		out = append(out, in)
	}
	for _, cur := range held.Indexes() {
		if !seen[id{cur.Key(), cur.meta.Partition}] && (drop == nil || !drop(cur.meta)) {
			out = append(out, cur)
		}
	}
	return NewSnapshot(version, out...), rollbacks
}
