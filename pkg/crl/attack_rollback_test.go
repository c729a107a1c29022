package crl_test

import (
	"math/big"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

// TestAttackCRLRollback: genuinely signed but older CRLs of the issuer,
// replayed by whoever sits on the CDP's HTTP path or by a lagging crl
// replica, try to un-revoke serial 42, revoked by the CRL in force (number
// 5). Each attempt goes through Merge as the edge applies a snapshot, and
// the device certificate is then judged by Decide: it stays revoked.
// Attacker review of pkg/crl; held.
func TestAttackCRLRollback(t *testing.T) {
	ca := crltest.NewCA(t, "Rollback CA", t0)
	other := crltest.NewCA(t, "Other CA", t0)
	gen := func(c *crltest.CA, number int64, thisUpdate time.Time, serials ...int64) *crl.Index {
		return indexRevoking(t, c, crltest.CRLOptions{Number: number, ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(24 * time.Hour)}, serials...)
	}
	held := crl.NewSnapshot(1, gen(ca, 5, t0.Add(time.Hour), 42), gen(other, 1, t0))
	leaf := ca.Leaf(t, big.NewInt(42), t0)
	tests := []struct {
		name     string
		incoming []*crl.Index
	}{
		{"lower CRL number, without 42", []*crl.Index{gen(ca, 4, t0)}},
		{"lower CRL number with a later thisUpdate", []*crl.Index{gen(ca, 4, t0.Add(2*time.Hour))}},
		{"same CRL number, older thisUpdate", []*crl.Index{gen(ca, 5, t0)}},
		{"a snapshot without the issuer", []*crl.Index{gen(other, 2, t0.Add(time.Hour))}},
		{"an empty snapshot", nil},
		{"the old CRL twice in one snapshot", []*crl.Index{gen(ca, 3, t0), gen(ca, 4, t0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, _ := crl.Merge(2, held, tt.incoming, func(crl.Meta) bool { return false })
			d := next.Decide(leaf, t0.Add(90*time.Minute), crl.Policy{})
			if d.Verdict != crl.Revoked || !d.Refused {
				t.Fatalf("serial 42 after the replay: verdict %v, refused %v; want revoked", d.Verdict, d.Refused)
			}
		})
	}
}

// indexRevoking returns the verified index of a CRL of c made with o that
// revokes serials (at t0).
func indexRevoking(tb testing.TB, c *crltest.CA, o crltest.CRLOptions, serials ...int64) *crl.Index {
	tb.Helper()
	for _, s := range serials {
		o.Revoked = append(o.Revoked, crltest.Revoked{Serial: big.NewInt(s), At: t0})
	}
	return indexOf(tb, c, c.CRL(tb, o))
}
