package certmap

import (
	"crypto/sha1" //nolint:gosec // the mapping form under test is SHA-1
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/segmesh/segmesh/internal/testpki"
)

// sidExtension builds the KB5014754 SID extension for sid.
func sidExtension(tb testing.TB, sid string) pkix.Extension {
	tb.Helper()
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0xa0), func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidSIDOtherName())
			b.AddASN1(cbasn1.Tag(0xa0), func(b *cryptobyte.Builder) {
				b.AddASN1OctetString([]byte(sid))
			})
		})
	})
	der, err := b.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	return pkix.Extension{Id: oidSIDExtension(), Value: der}
}

// mintIssued returns a certificate issued by a CA named, in encoded order,
// DC=test, DC=lab, CN=Lab Issuing CA, with the given serial and extensions.
func mintIssued(tb testing.TB, serial []byte, exts ...pkix.Extension) *x509.Certificate {
	tb.Helper()
	oidDC := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	caName := pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
		{Type: oidDC, Value: "test"}, {Type: oidDC, Value: "lab"}, {Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "Lab Issuing CA"},
	}}
	ca := testpki.NewCA(tb, "", testpki.Subject(caName))
	return ca.Issue(tb, "bob", testpki.Serial(new(big.Int).SetBytes(serial)),
		testpki.SubjectKeyID([]byte{0xdd, 0xde, 0x2c, 0xa4}), testpki.Extension(exts...)).Cert
}

func TestStrongFormsAndMatch(t *testing.T) {
	// The serial of Microsoft's example, 10 e8 bd 03 00 00 00 00 00 32, is
	// written 32000000000003bde810 in altSecurityIdentities.
	serial, _ := hex.DecodeString("10e8bd03000000000032")
	const sid = "S-1-5-21-1004336348-1177238915-682003330-1106"
	cert := mintIssued(t, serial, sidExtension(t, sid))
	certSHA1 := sha1.Sum(cert.Raw)                    //nolint:gosec // test of the SHA-1 form
	keySHA1 := sha1.Sum(cert.RawSubjectPublicKeyInfo) //nolint:gosec // test of the SHA-1 form

	forms := StrongForms(cert)
	wantForms := []string{
		"X509:<I>DC=test,DC=lab,CN=Lab Issuing CA<SR>32000000000003bde810",
		"X509:<SKI>ddde2ca4",
		"X509:<SHA1-PUKEY>" + hex.EncodeToString(certSHA1[:]),
	}
	if strings.Join(forms, "\n") != strings.Join(wantForms, "\n") {
		t.Fatalf("StrongForms =\n%s\nwant\n%s", strings.Join(forms, "\n"), strings.Join(wantForms, "\n"))
	}

	tests := []struct {
		name  string
		m     Mapping
		match bool
	}{
		{"issuer and serial as Windows writes it", Mapping{AltSecurityIdentities: []string{wantForms[0]}}, true},
		{"issuer in RFC 4514 order, upper-case hex", Mapping{AltSecurityIdentities: []string{"X509:<I>CN=Lab Issuing CA,DC=lab,DC=test<SR>32000000000003BDE810"}}, true},
		{"issuer with spaces and lower-case types", Mapping{AltSecurityIdentities: []string{"x509:<I>dc=test, dc=lab, cn=lab issuing ca<SR>32000000000003bde810"}}, true},
		{"serial in natural order is not Windows' form", Mapping{AltSecurityIdentities: []string{"X509:<I>DC=test,DC=lab,CN=Lab Issuing CA<SR>10e8bd03000000000032"}}, false},
		{"another issuer", Mapping{AltSecurityIdentities: []string{"X509:<I>DC=test,DC=lab,CN=Other CA<SR>32000000000003bde810"}}, false},
		{"issuer with an extra RDN", Mapping{AltSecurityIdentities: []string{"X509:<I>DC=test,DC=lab,OU=PKI,CN=Lab Issuing CA<SR>32000000000003bde810"}}, false},
		{"SKI", Mapping{AltSecurityIdentities: []string{"X509:<SKI>DDDE2CA4"}}, true},
		{"wrong SKI", Mapping{AltSecurityIdentities: []string{"X509:<SKI>ddde2ca5"}}, false},
		{"SHA1 of the certificate", Mapping{AltSecurityIdentities: []string{wantForms[2]}}, true},
		{"SHA1 of the public key", Mapping{AltSecurityIdentities: []string{"X509:<SHA1-PUKEY>" + hex.EncodeToString(keySHA1[:])}}, true},
		{"weak forms do not count", Mapping{AltSecurityIdentities: []string{"X509:<S>CN=bob", "X509:<I>DC=test,DC=lab,CN=Lab Issuing CA<S>CN=bob", "Kerberos:bob@LAB.TEST", "X509:<RFC822>bob@lab.test"}}, false},
		{"garbage", Mapping{AltSecurityIdentities: []string{"X509:", "X509:<I", "", "<SKI>ddde2ca4"}}, false},
		{"SID extension equals objectSid", Mapping{ObjectSID: sid}, true},
		{"other objectSid", Mapping{ObjectSID: "S-1-5-21-1004336348-1177238915-682003330-1107"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form, ok := StrongMatch(cert, tt.m)
			if ok != tt.match {
				t.Fatalf("StrongMatch = %q, %v; want %v", form, ok, tt.match)
			}
		})
	}
}

func TestCertificateSID(t *testing.T) {
	const sid = "S-1-5-21-1-2-3-500"
	got, ok, err := CertificateSID(mintClientWith(t, sidExtension(t, sid)))
	if err != nil || !ok || got != sid {
		t.Fatalf("CertificateSID = %q, %v, %v", got, ok, err)
	}
	if _, ok, err := CertificateSID(mintClientWith(t)); ok || err != nil {
		t.Fatalf("a certificate without the extension gave %v, %v", ok, err)
	}
	bad := pkix.Extension{Id: oidSIDExtension(), Value: []byte{0x30, 0x00}}
	if _, _, err := CertificateSID(mintClientWith(t, bad)); err == nil {
		t.Fatal("a malformed SID extension was accepted")
	}
}

func TestSIDString(t *testing.T) {
	b, _ := hex.DecodeString("010500000000000515000000010000000200000003000000f4010000")
	if got, err := sidString(b); err != nil || got != "S-1-5-21-1-2-3-500" {
		t.Fatalf("sidString = %q, %v", got, err)
	}
	for _, bad := range [][]byte{nil, {1}, {2, 0, 0, 0, 0, 0, 0, 5}, b[:len(b)-1]} {
		if _, err := sidString(bad); err == nil {
			t.Errorf("sidString(%x) accepted", bad)
		}
	}
}

func TestResolveStrong(t *testing.T) {
	bobCert := mintClient(t, "device", "bob.smith@lab.test")
	strongForm := StrongForms(bobCert)[0]
	published := mintClient(t, "device", "alice@lab.test")
	tests := []struct {
		name    string
		cert    *x509.Certificate
		byUPN   map[string]answer
		down    bool
		want    string
		refused string
	}{
		{name: "SAN UPN strongly bound by issuer and serial", cert: bobCert,
			byUPN: map[string]answer{"bob.smith@lab.test": {mapping: Mapping{UPN: "bob.smith@lab.test", DN: "CN=Bob", AltSecurityIdentities: []string{strongForm}}}},
			want:  "bob.smith@lab.test"},
		{name: "SAN UPN user without a strong binding", cert: bobCert,
			byUPN:   map[string]answer{"bob.smith@lab.test": {mapping: Mapping{UPN: "bob.smith@lab.test", DN: "CN=Bob"}}},
			refused: strongForm},
		{name: "SAN UPN names nobody", cert: bobCert, refused: "no directory user is named"},
		{name: "userCertificate match is strong by itself", cert: published, want: "alice@lab.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeLookup{
				byDER: map[string]answer{string(published.Raw): {mapping: Mapping{UPN: "alice@lab.test", DN: "CN=Alice"}}},
				byUPN: tt.byUPN,
			}
			r, err := NewResolver(ResolverConfig{Mapper: fake, Realms: testRealms(t), StrongMapping: true})
			if err != nil {
				t.Fatal(err)
			}
			id, err := r.Resolve(t.Context(), tt.cert)
			if tt.refused != "" {
				var re *RefusedError
				if !errors.As(err, &re) || !strings.Contains(err.Error(), tt.refused) {
					t.Fatalf("Resolve() = %+v, %v; want refusal with %q", id, err, tt.refused)
				}
				return
			}
			if err != nil || id.UPN.String() != tt.want {
				t.Fatalf("Resolve() = %+v, %v; want %s", id, err, tt.want)
			}
		})
	}
	if _, err := NewResolver(ResolverConfig{Realms: testRealms(t), StrongMapping: true}); err == nil {
		t.Fatal("strong mapping without a mapper was accepted")
	}
}

func FuzzParseSIDExtension(f *testing.F) {
	f.Add(sidExtension(f, "S-1-5-21-1-2-3-500").Value)
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		sid, err := parseSIDExtension(der)
		if err == nil && !strings.HasPrefix(sid, "S-1-") {
			t.Fatalf("parseSIDExtension accepted %q", sid)
		}
	})
}
