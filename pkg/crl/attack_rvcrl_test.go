package crl_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

// TestAttackPartitionNameLookalikes: a partition covers a certificate only
// when its Issuing Distribution Point names the very distribution point
// the certificate names. Two names that differ only in the case of the
// scheme and host are one URL; any other difference is another URL, and
// the certificate is refused as uncovered rather than judged by a CRL
// that does not speak for it: the query or fragment of a URL without a
// path and its userinfo were lower-cased with the host (failed on main:
// "?A" covered "?a"); a trailing slash, a port, percent-encoding and
// another scheme are other URLs (fail closed).
func TestAttackPartitionNameLookalikes(t *testing.T) {
	ca := crltest.NewCA(t, "Lookalike CA", t0)
	tests := []struct {
		name      string
		idp, cdp  string
		wantCover bool
	}{
		{"host case", "http://PKI.lab.test/a.crl", "http://pki.LAB.test/a.crl", true},
		{"scheme case", "HTTP://pki.lab.test/a.crl", "http://pki.lab.test/a.crl", true},
		{"host case, query without a path", "http://PKI.lab.test?x", "http://pki.lab.test?x", true},
		{"query case without a path", "http://pki.lab.test?A", "http://pki.lab.test?a", false},
		{"fragment case without a path", "http://pki.lab.test#Part", "http://pki.lab.test#part", false},
		{"userinfo case", "http://Crl@pki.lab.test/a.crl", "http://crl@pki.lab.test/a.crl", false},
		{"userinfo, host case", "http://crl@PKI.lab.test/a.crl", "http://crl@pki.lab.test/a.crl", true},
		{"path case", "http://pki.lab.test/A.crl", "http://pki.lab.test/a.crl", false},
		{"trailing slash", "http://pki.lab.test/a.crl/", "http://pki.lab.test/a.crl", false},
		{"explicit port", "http://pki.lab.test:80/a.crl", "http://pki.lab.test/a.crl", false},
		{"percent-encoding", "http://pki.lab.test/%61.crl", "http://pki.lab.test/a.crl", false},
		{"percent-encoding case", "http://pki.lab.test/a%2f.crl", "http://pki.lab.test/a%2F.crl", false},
		{"ldap and http", "ldap://pki.lab.test/a.crl", "http://pki.lab.test/a.crl", false},
		{"escaped space and a space", "http://pki.lab.test/a%20b.crl", "http://pki.lab.test/a b.crl", true},
	}
	now := t0.Add(time.Hour)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := indexOf(t, ca, ca.CRL(t, crltest.CRLOptions{Number: 1, ThisUpdate: t0, NextUpdate: t0.Add(24 * time.Hour), Partition: []string{tt.idp}}))
			leaf := ca.Leaf(t, big.NewInt(int64(100+i)), t0, tt.cdp)
			d := crl.NewSnapshot(1, ix).Decide(leaf, now, crl.Policy{})
			if covered := d.Verdict == crl.Good; covered != tt.wantCover || d.Refused == tt.wantCover {
				t.Fatalf("IDP %q, certificate CDP %q: verdict %v refused %v; want covered %v", tt.idp, tt.cdp, d.Verdict, d.Refused, tt.wantCover)
			}
		})
	}
}

// TestAttackEmptyPartitionName: an Issuing Distribution Point whose
// distributionPoint is present but names nothing (a fullName of no
// GeneralNames; RFC 5280 requires at least one) was read as the scope ""
// — a CRL of every certificate — so such a CRL, a partition by intent,
// served at the full CRL's URL would replace the full CRL as its newer
// version and un-revoke what only the full CRL lists. It is refused as
// malformed. Failed on main (parsed with scope "").
func TestAttackEmptyPartitionName(t *testing.T) {
	ca := crltest.NewCA(t, "Empty CA", t0)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(*cryptobyte.Builder) {})
		})
	})
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: t0, NextUpdate: t0.Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: oidIDP, Critical: true, Value: b.BytesOrPanic()}}}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := crl.Parse(der)
	if err == nil {
		t.Fatalf("IDP naming an empty fullName: parsed with scope %q; want refused", c.Partition())
	}
}
