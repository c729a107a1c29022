package crl_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/crltest"
)

var oidCDP = asn1.ObjectIdentifier{2, 5, 29, 31}

// FuzzCertScopeNames: a certificate's CRL Distribution Points extension,
// whatever its bytes (a device certificate is CA-signed, but a CA may
// write odd names), is read by the handshake's verdict without a panic,
// into the same names as the reading it replaced in session 7 (kept below
// as the reference, refCertDPNames: the rewrite reads into one buffer and
// must not change which partition covers a certificate), and Decide
// against a partitioned issuer gives the verdict those names imply.
func FuzzCertScopeNames(f *testing.F) {
	ca := crltest.NewCA(f, "Fuzz CDP CA", t0)
	const dpA = "http://pki.example.com/CertEnroll/Fuzz%20CA+1.crl"
	for _, cdps := range [][]string{
		{dpA},
		{"ldap:///CN=Fuzz%20CA,CN=pki,CN=CDP,CN=Public%20Key%20Services?certificateRevocationList?base", "HTTP://PKI.Example.COM/CertEnroll/Fuzz%20CA+1.crl"},
		{"http://user@PKI.example.com?Q#F", "http://pki.example.com/a b\t.crl"},
	} {
		leaf := ca.Leaf(f, big.NewInt(1), t0, cdps...)
		for _, e := range leaf.Extensions {
			if e.Id.Equal(oidCDP) {
				f.Add(e.Value)
			}
		}
	}
	f.Add([]byte{0x30, 0x06, 0x30, 0x04, 0xa0, 0x02, 0xa1, 0x00})             // nameRelativeToCRLIssuer, empty
	f.Add([]byte{0x30, 0x08, 0x30, 0x06, 0xa0, 0x04, 0xa0, 0x02, 0x82, 0x00}) // a dNSName
	f.Add([]byte{0x30, 0x04, 0x30, 0x02, 0xa0, 0x00})                         // a name that names nothing
	c, err := crl.Parse(ca.CRL(f, crltest.CRLOptions{ThisUpdate: t0, Partition: []string{dpA},
		Revoked: []crltest.Revoked{{Serial: big.NewInt(7), At: t0}}}))
	if err != nil {
		f.Fatal(err)
	}
	scope := strings.Fields(c.Partition())
	snap := crl.NewSnapshot(1, c.Index(ca.Cert, dpA, t0))
	f.Fuzz(func(t *testing.T, ext []byte) {
		cert := &x509.Certificate{SerialNumber: big.NewInt(42), RawIssuer: ca.Cert.RawSubject, Issuer: ca.Cert.Subject,
			AuthorityKeyId: ca.Cert.SubjectKeyId, Extensions: []pkix.Extension{{Id: oidCDP, Value: ext}}}
		got, want := crl.CertScopeNames(cert), refCertDPNames(cert)
		if !slices.Equal(got, want) {
			t.Fatalf("names %q; the reference reads %q", got, want)
		}
		covered := slices.ContainsFunc(want, func(n string) bool { return slices.Contains(scope, n) })
		d := snap.Decide(cert, t0.Add(time.Hour), crl.Policy{})
		if covered != (d.Verdict == crl.Good) || !covered != (d.Verdict == crl.Unknown && d.Info.Uncovered) {
			t.Fatalf("verdict %v (uncovered %v) for names %q; partition %q", d.Verdict, d.Info.Uncovered, want, scope)
		}
	})
}

// refReadDPName reads a DistributionPointName's CHOICE (the content of the
// [0] element holding it) into canonical names.
func refReadDPName(dpn cryptobyte.String) ([]string, error) {
	var names []string
	for !dpn.Empty() {
		var v cryptobyte.String
		var tag cbasn1.Tag
		if !dpn.ReadAnyASN1(&v, &tag) {
			return nil, errors.New("malformed distribution point name")
		}
		switch tag {
		case cbasn1.Tag(0).Constructed().ContextSpecific(): // fullName GeneralNames
			for !v.Empty() {
				var gn cryptobyte.String
				var gt cbasn1.Tag
				if !v.ReadAnyASN1(&gn, &gt) {
					return nil, errors.New("malformed distribution point fullName")
				}
				if gt == cbasn1.Tag(6).ContextSpecific() {
					names = append(names, "uri:"+refCanonicalURI(gn))
				} else {
					names = append(names, fmt.Sprintf("gn%d:%x", int(gt&0x1f), []byte(gn)))
				}
			}
		case cbasn1.Tag(1).Constructed().ContextSpecific(): // nameRelativeToCRLIssuer
			names = append(names, fmt.Sprintf("rdn:%x", []byte(v)))
		default:
			return nil, fmt.Errorf("distribution point name of unknown form (tag %d)", int(tag&0x1f))
		}
	}
	if len(names) == 0 {
		// Read as no names, it would be a CRL of every certificate.
		return nil, errors.New("distribution point that names nothing")
	}
	return names, nil
}

// refCanonicalURI lower-cases the scheme and host of u and escapes bytes
// outside 0x21..0x7e, so the names of a CRL and of a certificate that
// differ only there match, and a scope text never holds a space. The
// authority ends at the first '/', '?' or '#' after "://" (RFC 3986 3.2),
// and userinfo before an '@' in it keeps its case: a query, fragment or
// user name that differs in case is another URL.
func refCanonicalURI(u []byte) string {
	var b strings.Builder
	schemeEnd, hostStart, hostEnd := 0, 0, 0
	if i := bytes.Index(u, []byte("://")); i >= 0 {
		schemeEnd, hostStart, hostEnd = i, i+3, len(u)
		if j := bytes.IndexAny(u[i+3:], "/?#"); j >= 0 {
			hostEnd = i + 3 + j
		}
		if at := bytes.LastIndexByte(u[hostStart:hostEnd], '@'); at >= 0 {
			hostStart += at + 1
		}
	}
	for i, c := range u {
		switch {
		case c < 0x21 || c > 0x7e:
			fmt.Fprintf(&b, "%%%02X", c)
		case (i < schemeEnd || hostStart <= i && i < hostEnd) && 'A' <= c && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// refCertDPNames returns the canonical names of cert's CRL distribution
// points (the distributionPoint of each; cRLIssuer-only points name
// indirect CRLs, which segmesh refuses). A malformed extension names none.
func refCertDPNames(cert *x509.Certificate) []string {
	var names []string
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidCDP) {
			continue
		}
		in := cryptobyte.String(ext.Value)
		var seq cryptobyte.String
		if !in.ReadASN1(&seq, cbasn1.SEQUENCE) {
			return nil
		}
		for !seq.Empty() {
			var dp cryptobyte.String
			if !seq.ReadASN1(&dp, cbasn1.SEQUENCE) {
				return nil
			}
			var dpn cryptobyte.String
			var present bool
			if !dp.ReadOptionalASN1(&dpn, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) {
				return nil
			}
			if !present {
				continue
			}
			n, err := refReadDPName(dpn)
			if err != nil {
				return nil
			}
			names = append(names, n...)
		}
	}
	return names
}
