package crl_test

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

func TestDecide(t *testing.T) {
	ca := crltest.NewCA(t, "Decide CA", t0)
	other := crltest.NewCA(t, "Other CA", t0)
	ix := indexOf(t, ca, ca.CRL(t, crltest.CRLOptions{ThisUpdate: t0, NextUpdate: t0.Add(time.Hour),
		Revoked: []crltest.Revoked{{Serial: big.NewInt(5), At: t0}}}))
	snap := crl.NewSnapshot(1, ix)
	closed := ix.WithMeta(func() crl.Meta { m := ix.Meta(); m.FailClosed = true; return m }())
	tests := []struct {
		name        string
		snap        *crl.Snapshot
		cert        int64
		ca          *crltest.CA
		now         time.Time
		p           crl.Policy
		want        crl.Verdict
		refused     bool
		failedClose bool
	}{
		{"good", snap, 6, ca, t0, crl.Policy{}, crl.Good, false, false},
		{"revoked", snap, 5, ca, t0, crl.Policy{}, crl.Revoked, true, false},
		{"revoked while stale", snap, 5, ca, t0.Add(2 * time.Hour), crl.Policy{FailClosedOnStale: true}, crl.Revoked, true, false},
		{"stale, fail open", snap, 6, ca, t0.Add(2 * time.Hour), crl.Policy{}, crl.Stale, false, false},
		{"stale by the caller's clock, fail closed", snap, 6, ca, t0.Add(2 * time.Hour), crl.Policy{FailClosedOnStale: true}, crl.Stale, true, true},
		{"stale, fail closed from the CRL's meta", crl.NewSnapshot(1, closed), 6, ca, t0.Add(2 * time.Hour), crl.Policy{}, crl.Stale, true, true},
		{"not yet stale, fail closed", snap, 6, ca, t0.Add(time.Hour), crl.Policy{FailClosedOnStale: true}, crl.Good, false, false},
		{"unknown issuer allowed", snap, 5, other, t0, crl.Policy{}, crl.Unknown, false, false},
		{"unknown issuer refused", snap, 5, other, t0, crl.Policy{RequireKnownIssuer: true}, crl.Unknown, true, false},
		{"no snapshot", nil, 5, ca, t0, crl.Policy{RequireKnownIssuer: true}, crl.Unknown, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.snap.Decide(tc.ca.Leaf(t, big.NewInt(tc.cert), t0), tc.now, tc.p)
			if d.Verdict != tc.want || d.Refused != tc.refused || d.Info.FailedClosed != tc.failedClose {
				t.Fatalf("Decide = %v refused %v failedClosed %v, want %v %v %v", d.Verdict, d.Refused, d.Info.FailedClosed, tc.want, tc.refused, tc.failedClose)
			}
			if tc.want != crl.Unknown && d.Info.Issuer != ca.Cert.Subject.String() {
				t.Fatalf("issuer %q", d.Info.Issuer)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	ca := crltest.NewCA(t, "Merge CA", t0)
	ca2 := crltest.NewCA(t, "Second CA", t0)
	gen := func(c *crltest.CA, number int64, thisUpdate time.Time, serials ...int64) *crl.Index {
		return indexRevoking(t, c, crltest.CRLOptions{Number: number, ThisUpdate: thisUpdate}, serials...)
	}
	one, two := gen(ca, 1, t0, 5), gen(ca, 2, t0.Add(time.Minute), 5, 7)
	other := gen(ca2, 3, t0, 9)
	tests := []struct {
		name      string
		held      *crl.Snapshot
		incoming  []*crl.Index
		drop      func(crl.Meta) bool
		want      map[string]int // issuer → serials in force
		rollbacks int
	}{
		{"first snapshot", nil, []*crl.Index{two}, nil, map[string]int{"Merge CA": 2}, 0},
		{"newer replaces", crl.NewSnapshot(1, one), []*crl.Index{two}, nil, map[string]int{"Merge CA": 2}, 0},
		{"older CRL number refused", crl.NewSnapshot(1, two), []*crl.Index{one}, nil, map[string]int{"Merge CA": 2}, 1},
		{"same CRL again", crl.NewSnapshot(1, two), []*crl.Index{two}, nil, map[string]int{"Merge CA": 2}, 0},
		{"missing issuer kept", crl.NewSnapshot(1, two, other), []*crl.Index{two}, nil, map[string]int{"Merge CA": 2, "Second CA": 1}, 0},
		{"empty snapshot keeps everything", crl.NewSnapshot(1, two, other), nil, nil, map[string]int{"Merge CA": 2, "Second CA": 1}, 0},
		{"issuer out of the configuration dropped", crl.NewSnapshot(1, two, other), []*crl.Index{two},
			func(m crl.Meta) bool { return m.Issuer == ca2.Cert.Subject.String() }, map[string]int{"Merge CA": 2}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, rb := crl.Merge(7, tc.held, tc.incoming, tc.drop)
			if got.Version() != 7 || len(rb) != tc.rollbacks {
				t.Fatalf("version %d, rollbacks %v", got.Version(), rb)
			}
			if len(got.Indexes()) != len(tc.want) {
				t.Fatalf("%d issuers, want %v", len(got.Indexes()), tc.want)
			}
			for _, ix := range got.Indexes() {
				if n, ok := tc.want[strings.TrimSuffix(strings.TrimPrefix(ix.Meta().Issuer, "CN="), ",O=segmesh test")]; !ok || n != ix.Len() {
					t.Fatalf("%s holds %d serials, want %v", ix.Meta().Issuer, ix.Len(), tc.want)
				}
			}
			if tc.rollbacks > 0 && (rb[0].Incoming.Number.Int64() != 1 || rb[0].Held.Number.Int64() != 2) {
				t.Fatalf("rollback %+v", rb[0])
			}
		})
	}
}
