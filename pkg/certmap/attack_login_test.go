package certmap

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
)

// TestAttackLoginIdentity: a device tries to be delegated as ANOTHER user
// through segmesh.identity.loginIdentity (12b38c6): addresses another user
// holds under a prefix other than smtp:, LDAP filter injection through the
// SAN email (a successful injection would find mallory alone), a NUL, an
// email only in the subject DN, several SAN emails. Each must be refused or
// give the address's own holder. Attacker review; held.
func TestAttackLoginIdentity(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	// mallory holds alice's outside address under prefixes that are not
	// mail routing (x500:, sip:) and as a Kerberos: name of another form.
	mal := ldaptest.User("CN=Mal Two,CN=Users,"+testBase, "mal2", "mal2@lab.test")
	mal.Attrs["proxyAddresses"] = [][]byte{[]byte("x500:alice.out@example.com"), []byte("sip:alice.out@example.com"), []byte("smtp:mal2@example.com")}
	mal.Attrs["altSecurityIdentities"] = [][]byte{[]byte("X509:<I>CN=x<S>alice.out@example.com")}
	l.srv.Add(mal)

	email := func(addrs ...string) *x509.Certificate {
		return testpki.SelfSigned(t, "device", testpki.Email(addrs...)).Cert
	}
	subjectOnly := testpki.SelfSigned(t, "device", testpki.Subject(pkix.Name{CommonName: "device", ExtraNames: []pkix.AttributeTypeAndValue{
		{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "alice.cloud@example.com"}}})).Cert

	tests := []struct {
		name string
		cert *x509.Certificate
		want string // the delegated UPN; "" means refused
	}{
		{"x500:, sip: and X509: values are not addresses", email("alice.out@example.com"), ""},
		{"SMTP: primary, any case, is its owner's", email("ALICE@LAB.TEST"), "alice@lab.test"},
		{"smtp: secondary is its owner's", email("MAL2@example.com"), "mal2@lab.test"},
		{"injection: close the assertion and name mallory", email("nobody)(sAMAccountName=mallory"), ""},
		{"injection: wildcard", email("*"), ""},
		{"injection: wildcard in a value", email("mallory*"), ""},
		{"injection: NUL after mallory's UPN", email("mallory@lab.test\x00.example.com"), ""},
		{"injection: escape sequence spelled out", email(`mallory@lab.test\2a`), ""},
		{"an email in the subject DN only is not looked up", subjectOnly, ""},
		{"several emails: an unknown one does not stop the next", email("who@example.com", "alice.cloud@example.com"), "alice@lab.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewResolver(ResolverConfig{Mapper: newMapper(t, l.config(nil)), Realms: testRealms(t), LoginIdentity: LoginOnPremisesUPN})
			if err != nil {
				t.Fatal(err)
			}
			id, err := r.Resolve(context.Background(), tt.cert)
			if tt.want == "" {
				var re *RefusedError
				if !errors.As(err, &re) {
					t.Fatalf("Resolve = %s (%v), %v; want a refusal", id.UPN, id.DN, err)
				}
				return
			}
			if err != nil || id.UPN.String() != tt.want {
				t.Fatalf("Resolve = %s (%v), %v; want %s", id.UPN, id.DN, err, tt.want)
			}
		})
	}
}
