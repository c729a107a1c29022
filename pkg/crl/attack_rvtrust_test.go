package crl_test

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

// TestAttackMoreDistributionPointsThanTheBuffer: the handshake's verdict
// reads a certificate's distribution points into a buffer on the stack
// (512 bytes of names, 8 names). A certificate naming more, and longer,
// distribution points than that is judged exactly as one naming few:
// covered by the partition of any of them (the first, the ninth, the last),
// revoked by a partition listing its serial whichever partition is read
// first, refused when no partition names one of them; and the names read
// are the ones CertScopeNames gives.
func TestAttackMoreDistributionPointsThanTheBuffer(t *testing.T) {
	ca := crltest.NewCA(t, "Many DP CA", t0)
	var dps []string
	for i := range 12 {
		dps = append(dps, fmt.Sprintf("http://PKI%d.lab.test/%s/part-%02d.crl", i, strings.Repeat("p", 60), i))
	}
	part := func(dp string, n int64, serials ...int64) *crl.Index {
		o := crltest.CRLOptions{Number: n, ThisUpdate: t0, NextUpdate: t0.Add(24 * time.Hour), Partition: []string{dp}}
		for _, s := range serials {
			o.Revoked = append(o.Revoked, crltest.Revoked{Serial: big.NewInt(s), At: t0})
		}
		return indexOf(t, ca, ca.CRL(t, o))
	}
	leaf := ca.Leaf(t, big.NewInt(5), t0, dps...)
	tests := []struct {
		name  string
		parts []*crl.Index
		want  crl.Verdict
	}{
		{"the first one's partition", []*crl.Index{part(dps[0], 1)}, crl.Good},
		{"the ninth one's partition", []*crl.Index{part(dps[8], 1)}, crl.Good},
		{"the last one's partition", []*crl.Index{part(dps[11], 1)}, crl.Good},
		{"the last one's partition, host in another case", []*crl.Index{part(strings.ToLower(dps[11]), 1)}, crl.Good},
		{"the last one's partition lists it", []*crl.Index{part(dps[0], 1), part(dps[11], 2, 5)}, crl.Revoked},
		{"an unnamed partition lists it", []*crl.Index{part(dps[11], 1), part("http://pki.lab.test/other.crl", 2, 5)}, crl.Revoked},
		{"no partition names one", []*crl.Index{part("http://pki.lab.test/other.crl", 1)}, crl.Unknown},
		{"the last one's path in another case", []*crl.Index{part(strings.Replace(dps[11], "part-11", "PART-11", 1), 1)}, crl.Unknown},
		{"the last one's name cut short", []*crl.Index{part(dps[11][:len(dps[11])-1], 1)}, crl.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := crl.NewSnapshot(1, tt.parts...)
			d := snap.Decide(leaf, t0.Add(time.Hour), crl.Policy{})
			if d.Verdict != tt.want || d.Refused != (tt.want != crl.Good) {
				t.Fatalf("Decide = %v refused %v (partition %q); want %v", d.Verdict, d.Refused, d.Info.Partition, tt.want)
			}
			rev, _, known := snap.IsRevoked(leaf)
			if rev != (tt.want == crl.Revoked) || known != (tt.want != crl.Unknown) {
				t.Fatalf("IsRevoked = %v known %v; want the verdict %v", rev, known, tt.want)
			}
		})
	}
	names := crl.CertScopeNames(leaf)
	if len(names) != len(dps) {
		t.Fatalf("CertScopeNames: %d names; want %d", len(names), len(dps))
	}
	for i, dp := range dps {
		if want := "uri:" + strings.Replace(dp, fmt.Sprintf("PKI%d", i), fmt.Sprintf("pki%d", i), 1); !slices.Contains(names, want) {
			t.Errorf("CertScopeNames lacks %q", want)
		}
	}
}
