package crl_test

import (
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

// Distribution points of a CA that partitions its CRL.
const (
	partURLA    = "http://pki.lab.test/CertEnroll/part-a.crl"
	partURLB    = "http://pki.lab.test/CertEnroll/part-b.crl"
	partURLFull = "http://pki.lab.test/CertEnroll/full.crl"
)

// TestAttackPartitionedCRLs: a CA that partitions its CRL (RFC 5280 5.2.5,
// an Issuing Distribution Point naming a distribution point) publishes
// several CRLs of one issuer, each covering the certificates that name its
// distribution point; CRL numbers run per partition. Keyed by issuer only,
// a newer partition B replaced partition A and un-revoked serial 42, listed
// only in A; a partition (or a user-certificates-only CRL) served at the
// full CRL's URL, genuinely signed and with a higher number, un-revoked
// what only the full CRL lists; the rollback rule refused partition B for
// having a lower number than A; and a certificate of partition A was judged
// Good by partition B, which does not cover it. Through NewSnapshot, Merge
// (the edge's and the crl role's way to put a snapshot in force) and
// Decide. Failed on main.
func TestAttackPartitionedCRLs(t *testing.T) {
	ca := crltest.NewCA(t, "Partition CA", t0)
	day := 24 * time.Hour
	// ix is the verified index of ca's CRL made with o, revoking serials,
	// as fetched from source.
	ix := func(source string, o crltest.CRLOptions, serials ...int64) *crl.Index {
		t.Helper()
		if o.NextUpdate.IsZero() {
			o.NextUpdate = o.ThisUpdate.Add(day)
		}
		for _, s := range serials {
			o.Revoked = append(o.Revoked, crltest.Revoked{Serial: big.NewInt(s), At: t0})
		}
		c := mustParse(t, ca.CRL(t, o))
		signer, err := c.Verify([]*x509.Certificate{ca.Cert})
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		return c.Index(signer, source, t0)
	}
	partA := func(n int64, serials ...int64) *crl.Index {
		return ix(partURLA, crltest.CRLOptions{Number: n, ThisUpdate: t0, Partition: []string{partURLA}}, serials...)
	}
	partB := func(n int64, source string, serials ...int64) *crl.Index {
		return ix(source, crltest.CRLOptions{Number: n, ThisUpdate: t0.Add(time.Minute), Partition: []string{partURLB}}, serials...)
	}
	full := func(n int64, serials ...int64) *crl.Index {
		return ix(partURLFull, crltest.CRLOptions{Number: n, ThisUpdate: t0}, serials...)
	}
	leafA42 := ca.Leaf(t, big.NewInt(42), t0, partURLA)
	leafA45 := ca.Leaf(t, big.NewInt(45), t0, partURLA)
	leafB43 := ca.Leaf(t, big.NewInt(43), t0, partURLB)
	leafB46 := ca.Leaf(t, big.NewInt(46), t0, partURLB)
	leafFull44 := ca.Leaf(t, big.NewInt(44), t0, partURLFull)
	now := t0.Add(time.Hour)

	tests := []struct {
		name      string
		held      *crl.Snapshot // nil: incoming alone, through NewSnapshot
		incoming  []*crl.Index
		leaf      *x509.Certificate
		want      crl.Verdict
		refused   bool
		rollbacks int
	}{
		{name: "newer partition B after A: 42 stays revoked",
			held: crl.NewSnapshot(1, partA(5, 42)), incoming: []*crl.Index{partB(6, partURLB)},
			leaf: leafA42, want: crl.Revoked, refused: true},
		{name: "A and B in one snapshot, B newer",
			incoming: []*crl.Index{partA(5, 42), partB(6, partURLB)},
			leaf:     leafA42, want: crl.Revoked, refused: true},
		{name: "B and A in one snapshot, B newer",
			incoming: []*crl.Index{partB(6, partURLB), partA(5, 42)},
			leaf:     leafA42, want: crl.Revoked, refused: true},
		{name: "partition B with a lower number than A is no rollback",
			held: crl.NewSnapshot(1, partA(6, 42)), incoming: []*crl.Index{partA(6, 42), partB(5, partURLB, 43)},
			leaf: leafB43, want: crl.Revoked, refused: true},
		{name: "partition B, newer, served at the full CRL's URL",
			held: crl.NewSnapshot(1, full(7, 44)), incoming: []*crl.Index{partB(8, partURLFull)},
			leaf: leafFull44, want: crl.Revoked, refused: true},
		{name: "user-certificates-only CRL, newer, served at the full CRL's URL",
			held: crl.NewSnapshot(1, full(7, 44)), incoming: []*crl.Index{ix(partURLFull, crltest.CRLOptions{Number: 8, ThisUpdate: t0, OnlyUserCerts: true}, 45)},
			leaf: leafFull44, want: crl.Revoked, refused: true},
		{name: "a certificate of partition A is not judged by partition B",
			incoming: []*crl.Index{partB(6, partURLB)},
			leaf:     leafA45, want: crl.Unknown, refused: true},
		{name: "a certificate of partition B with A and B held is good",
			incoming: []*crl.Index{partA(5, 42), partB(6, partURLB, 43)},
			leaf:     leafB46, want: crl.Good},
		{name: "partition A stale, B current: a certificate of A is stale",
			incoming: []*crl.Index{ix(partURLA, crltest.CRLOptions{Number: 5, ThisUpdate: t0, NextUpdate: t0.Add(time.Minute), Partition: []string{partURLA}}, 42), partB(6, partURLB)},
			leaf:     leafA45, want: crl.Stale},
		{name: "the full CRL current covers a certificate of a stale partition",
			incoming: []*crl.Index{ix(partURLA, crltest.CRLOptions{Number: 5, ThisUpdate: t0, NextUpdate: t0.Add(time.Minute), Partition: []string{partURLA}}), full(9)},
			leaf:     leafA45, want: crl.Good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var snap *crl.Snapshot
			var rollbacks []crl.Rollback
			if tt.held == nil {
				snap = crl.NewSnapshot(1, tt.incoming...)
			} else {
				snap, rollbacks = crl.Merge(2, tt.held, tt.incoming, func(crl.Meta) bool { return false })
			}
			d := snap.Decide(tt.leaf, now, crl.Policy{})
			if d.Verdict != tt.want || d.Refused != tt.refused {
				t.Fatalf("serial %v: verdict %v refused %v; want %v refused %v", tt.leaf.SerialNumber, d.Verdict, d.Refused, tt.want, tt.refused)
			}
			if len(rollbacks) != tt.rollbacks {
				t.Fatalf("rollbacks %+v; want %d", rollbacks, tt.rollbacks)
			}
		})
	}
}
