package crl_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

// TestPartitionText: the scope Parse reads from the Issuing Distribution
// Point, as Meta.Partition carries it: names sorted, scheme and host in
// lower case, bytes outside 0x21..0x7e escaped, onlyContainsUserCerts a
// token; "" for a CRL of every certificate.
func TestPartitionText(t *testing.T) {
	ca := crltest.NewCA(t, "Text CA", t0)
	rdn := rdnIDP(t)
	tests := []struct {
		name string
		ext  *pkix.Extension
		o    crltest.CRLOptions
		want string
	}{
		{"no IDP", nil, crltest.CRLOptions{}, ""},
		{"empty IDP", &pkix.Extension{Id: oidIDP, Critical: true, Value: crltest.IssuingDP(false)}, crltest.CRLOptions{}, ""},
		{"one URI", nil, crltest.CRLOptions{Partition: []string{"http://pki.lab.test/a.crl"}}, "uri:http://pki.lab.test/a.crl"},
		{"two URIs, case and a space", nil, crltest.CRLOptions{Partition: []string{"HTTP://PKI.Lab.Test/Part B.crl", "ldap:///CN=Lab%20CA,CN=pki"}},
			"uri:http://pki.lab.test/Part%20B.crl uri:ldap:///CN=Lab%20CA,CN=pki"},
		{"user certificates only", nil, crltest.CRLOptions{OnlyUserCerts: true}, crl.ScopeUserCertsOnly},
		{"user certificates of a partition", nil, crltest.CRLOptions{OnlyUserCerts: true, Partition: []string{"http://a/x.crl"}}, "onlyContainsUserCerts uri:http://a/x.crl"},
		{"nameRelativeToCRLIssuer", &pkix.Extension{Id: oidIDP, Critical: true, Value: rdn}, crltest.CRLOptions{}, "rdn:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var der []byte
			if tt.ext != nil {
				var err error
				der, err = x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: t0, NextUpdate: t0.Add(time.Hour),
					ExtraExtensions: []pkix.Extension{*tt.ext}}, ca.Cert, ca.Key)
				if err != nil {
					t.Fatal(err)
				}
			} else {
				tt.o.ThisUpdate = t0
				der = ca.CRL(t, tt.o)
			}
			c := mustParse(t, der)
			got := c.Partition()
			if tt.want == "rdn:" {
				if !strings.HasPrefix(got, "rdn:") || strings.Contains(got, " ") {
					t.Fatalf("Partition = %q; want one rdn: name", got)
				}
			} else if got != tt.want {
				t.Fatalf("Partition = %q; want %q", got, tt.want)
			}
			if ix := c.Index(ca.Cert, "http://x/", t0); ix.Meta().Partition != got {
				t.Fatalf("Meta.Partition = %q; want %q", ix.Meta().Partition, got)
			}
		})
	}
	// An Issuing Distribution Point field RFC 5280 does not define is refused.
	odd := append([]byte{0x30, 0x03}, 0x86, 0x01, 0xff)
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: t0, NextUpdate: t0.Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: oidIDP, Critical: true, Value: odd}}}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crl.Parse(der); kindOf(err) != crl.KindUnsupported {
		t.Fatalf("IDP with field [6]: Parse = %v; want unsupported", err)
	}
}

// rdnIDP is an Issuing Distribution Point whose distribution point is a
// nameRelativeToCRLIssuer (CN=Part 1).
func rdnIDP(tb testing.TB) []byte {
	tb.Helper()
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddBytes(rdnATV(tb))
			})
		})
	})
	return b.BytesOrPanic()
}

// rdnATV is the AttributeTypeAndValue CN=Part 1, DER.
func rdnATV(tb testing.TB) []byte {
	der, err := asn1.Marshal(pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "Part 1"})
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// TestPartitionCoverage: which certificates a CRL's scope speaks for (RFC
// 5280 6.3.3 (b)(2)), through Decide: a partition covers a certificate
// naming its distribution point (scheme and host in any case), not one
// naming another or none (crypto/x509 refuses a certificate whose
// distribution point is a nameRelativeToCRLIssuer); a CRL of user
// certificates only does not cover a CA certificate. A certificate no CRL
// held covers is refused as uncovered, whatever the policy.
func TestPartitionCoverage(t *testing.T) {
	ca := crltest.NewCA(t, "Cover CA", t0)
	idx := func(o crltest.CRLOptions, ext ...pkix.Extension) *crl.Index {
		t.Helper()
		var der []byte
		if len(ext) > 0 {
			var err error
			der, err = x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: t0, NextUpdate: t0.Add(24 * time.Hour),
				ExtraExtensions: ext}, ca.Cert, ca.Key)
			if err != nil {
				t.Fatal(err)
			}
		} else {
			o.ThisUpdate = t0
			der = ca.CRL(t, o)
		}
		return indexOf(t, ca, der)
	}
	partA := idx(crltest.CRLOptions{Partition: []string{"http://pki.lab.test/a.crl"}})
	users := idx(crltest.CRLOptions{OnlyUserCerts: true})
	rdn := idx(crltest.CRLOptions{}, pkix.Extension{Id: oidIDP, Critical: true, Value: rdnIDP(t)})
	tests := []struct {
		name string
		ix   *crl.Index
		cert *x509.Certificate
		want crl.Verdict
	}{
		{"partition, certificate names it", partA, ca.Leaf(t, big.NewInt(1), t0, "http://pki.lab.test/a.crl"), crl.Good},
		{"partition, certificate names it in upper case", partA, ca.Leaf(t, big.NewInt(2), t0, "HTTP://PKI.LAB.TEST/a.crl"), crl.Good},
		{"partition, path differs in case", partA, ca.Leaf(t, big.NewInt(3), t0, "http://pki.lab.test/A.crl"), crl.Unknown},
		{"partition, certificate names another", partA, ca.Leaf(t, big.NewInt(4), t0, "http://pki.lab.test/b.crl"), crl.Unknown},
		{"partition, certificate names none", partA, ca.Leaf(t, big.NewInt(5), t0), crl.Unknown},
		{"user certificates only, device", users, ca.Leaf(t, big.NewInt(6), t0), crl.Good},
		{"user certificates only, CA certificate", users, caCert(t, ca), crl.Unknown},
		{"nameRelativeToCRLIssuer, certificate names a URI", rdn, ca.Leaf(t, big.NewInt(7), t0, "http://pki.lab.test/a.crl"), crl.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := crl.NewSnapshot(1, tt.ix)
			d := snap.Decide(tt.cert, t0.Add(time.Hour), crl.Policy{})
			if d.Verdict != tt.want || d.Info.Uncovered != (tt.want == crl.Unknown) || d.Refused != (tt.want == crl.Unknown) {
				t.Fatalf("Decide = %v (uncovered %v, refused %v); want %v", d.Verdict, d.Info.Uncovered, d.Refused, tt.want)
			}
			// The crl role's Check says the same: unknown, so it learns the
			// certificate's distribution points.
			_, info, known := snap.IsRevoked(tt.cert)
			if known != (tt.want != crl.Unknown) || info.Uncovered != (tt.want == crl.Unknown) {
				t.Fatalf("IsRevoked known %v uncovered %v; want known %v", known, info.Uncovered, tt.want != crl.Unknown)
			}
		})
	}
}

// caCert is a CA certificate (cA asserted) signed by ca.
func caCert(tb testing.TB, ca *crltest.CA) *x509.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(99), Subject: pkix.Name{CommonName: "sub CA"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
