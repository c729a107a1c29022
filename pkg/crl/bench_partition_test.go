package crl_test

import (
	"crypto/x509"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

// partitionSnapshot returns a snapshot of n partitions of ca's CRLs (none:
// one full CRL), each listing 100 serials of its own, and the distribution
// point of each partition.
func partitionSnapshot(tb testing.TB, ca *crltest.CA, n int) (*crl.Snapshot, []string) {
	tb.Helper()
	var dps []string
	var list []*crl.Index
	for p := range max(n, 1) {
		o := crltest.CRLOptions{Number: 1, ThisUpdate: t0, NextUpdate: t0.Add(24 * time.Hour)}
		if n > 0 {
			dp := fmt.Sprintf("http://pki.example.com/CertEnroll/Bench%%20CA+%d.crl", p)
			dps = append(dps, dp)
			o.Partition = []string{dp}
		}
		for i := range 100 {
			o.Revoked = append(o.Revoked, crltest.Revoked{Serial: big.NewInt(int64(1_000_000*(p+1) + i)), At: t0})
		}
		c, err := crl.Parse(ca.CRL(tb, o))
		if err != nil {
			tb.Fatal(err)
		}
		signer, err := c.Verify([]*x509.Certificate{ca.Cert})
		if err != nil {
			tb.Fatal(err)
		}
		list = append(list, c.Index(signer, fmt.Sprintf("http://pki.example.com/%d", p), t0))
	}
	return crl.NewSnapshot(1, list...), dps
}

// BenchmarkDecidePartitions measures the handshake's revocation verdict
// (Snapshot.Decide, as the edge calls it for every handshake) for a
// certificate of an issuer with one full CRL ("full") or with 1, 10 and
// 100 partitions; the certificate names the last partition (an LDAP and an
// HTTP distribution point, as AD CS writes them) and is not listed: the
// whole walk.
func BenchmarkDecidePartitions(b *testing.B) {
	ca := crltest.NewCA(b, "Bench CA", t0)
	now := t0.Add(time.Hour)
	for _, n := range []int{0, 1, 10, 100} {
		snap, dps := partitionSnapshot(b, ca, n)
		cdps := []string{"ldap:///CN=Bench%20CA,CN=pki,CN=CDP,CN=Public%20Key%20Services,CN=Services,CN=Configuration,DC=lab,DC=test?certificateRevocationList?base?objectClass=cRLDistributionPoint"}
		if n > 0 {
			cdps = append(cdps, dps[n-1])
		}
		leaf := ca.Leaf(b, big.NewInt(42), t0, cdps...)
		name := "full"
		if n > 0 {
			name = fmt.Sprintf("partitions=%d", n)
		}
		b.Run(name, func(b *testing.B) {
			if d := snap.Decide(leaf, now, crl.Policy{}); d.Verdict != crl.Good {
				b.Fatalf("verdict %v; want good", d.Verdict)
			}
			b.ReportAllocs()
			i := 0
			cpu := cpuTime()
			for b.Loop() {
				snap.Decide(leaf, now, crl.Policy{})
				i++
			}
			reportCPU(b, cpu, i)
		})
	}
}

// TestDecidePartitionedAllocatesNothing: the handshake's verdict for a
// certificate of a partitioned issuer reads its distribution points
// without allocating (it allocated 18 times, 1,008 B, per check), for a
// certificate covered, one revoked, and one no partition covers.
func TestDecidePartitionedAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector inflates allocations")
	}
	ca := crltest.NewCA(t, "Bench CA", t0)
	snap, dps := partitionSnapshot(t, ca, 10)
	now := t0.Add(time.Hour)
	for _, tc := range []struct {
		name   string
		serial int64
		cdps   []string
		want   crl.Verdict
	}{
		{"covered", 42, []string{"ldap:///CN=Bench%20CA,CN=CDP?certificateRevocationList", dps[3]}, crl.Good},
		{"revoked", 4_000_007, []string{dps[3]}, crl.Revoked},
		{"uncovered", 42, []string{"http://pki.example.com/CertEnroll/other.crl"}, crl.Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf := ca.Leaf(t, big.NewInt(tc.serial), t0, tc.cdps...)
			if d := snap.Decide(leaf, now, crl.Policy{}); d.Verdict != tc.want {
				t.Fatalf("verdict %v; want %v", d.Verdict, tc.want)
			}
			if n := testing.AllocsPerRun(100, func() { snap.Decide(leaf, now, crl.Policy{}) }); n != 0 {
				t.Fatalf("%v allocations per check; want none", n)
			}
		})
	}
}
