package certmap

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
)

// TestLoginIdentity: segmesh.identity.loginIdentity delegates the on-premises
// UPN or sAMAccountName of the user the directory (the ldaptest fake, over
// the mapping's connection) finds by the certificate, its SAN UPN (a cloud
// UPN) or its SAN email (mail, proxyAddresses); certificateUpn keeps SEG's
// behaviour. Refusals name the setting. Issue 23 item 2.
func TestLoginIdentity(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	cloudAlice := testpki.SelfSigned(t, "alice", testpki.Email("alice.cloud@example.com")).Cert
	cloudUPN := mintClient(t, "alice", "alice.cloud@example.com")
	byMail := testpki.SelfSigned(t, "hank", testpki.Email("Hank.Hill@Example.COM")).Cert
	noUPN := testpki.SelfSigned(t, "nora", testpki.Email("nora@example.com")).Cert
	shared := testpki.SelfSigned(t, "shared", testpki.Email("team@example.com")).Cert
	stranger := testpki.SelfSigned(t, "stranger", testpki.Email("who@example.com")).Cert
	bare := testpki.SelfSigned(t, "bare").Cert
	foreignDomain := testpki.SelfSigned(t, "ivan", testpki.Email("ivan@example.com")).Cert

	// newLab's alice holds smtp:alice.cloud@example.com in proxyAddresses.
	hank := ldaptest.User("CN=Hank,CN=Users,"+testBase, "hhill", "hank@lab.test")
	hank.Attrs["mail"] = [][]byte{[]byte("hank.hill@example.com")}
	nora := ldaptest.User("CN=Nora,CN=Users,"+testBase, "nora", "")
	nora.Attrs["mail"] = [][]byte{[]byte("nora@example.com")}
	t1 := ldaptest.User("CN=T1,CN=Users,"+testBase, "t1", "t1@lab.test")
	t1.Attrs["proxyAddresses"] = [][]byte{[]byte("smtp:team@example.com")}
	t2 := ldaptest.User("CN=T2,CN=Users,"+testBase, "t2", "t2@lab.test")
	t2.Attrs["mail"] = [][]byte{[]byte("team@example.com")}
	ivan := ldaptest.User("CN=Ivan,CN=Users,DC=child,"+testBase, "ivan", "ivan@child.lab.test")
	ivan.Attrs["mail"] = [][]byte{[]byte("ivan@example.com")}
	l.srv.Add(hank, nora, t1, t2, ivan)

	type want struct {
		upn, realm, dn string
		source         Source
		refused        []string // substrings of the refusal; nil means success
	}
	tests := []struct {
		name  string
		login LoginIdentity
		cert  *x509.Certificate
		want  want
	}{
		{"email in proxyAddresses: alice's on-premises UPN", LoginOnPremisesUPN, cloudAlice,
			want{upn: "alice@lab.test", realm: "LAB.TEST", dn: "CN=Alice,CN=Users," + testBase, source: SourceLoginIdentity}},
		{"email in proxyAddresses: alice's sAMAccountName in her domain", LoginOnPremisesSAMAccountName, cloudAlice,
			want{upn: "alice@lab.test", realm: "LAB.TEST", dn: "CN=Alice,CN=Users," + testBase, source: SourceLoginIdentity}},
		{"cloud UPN in proxyAddresses", LoginOnPremisesUPN, cloudUPN,
			want{upn: "alice@lab.test", realm: "LAB.TEST", dn: "CN=Alice,CN=Users," + testBase, source: SourceLoginIdentity}},
		{"email in mail, any case", LoginOnPremisesUPN, byMail,
			want{upn: "hank@lab.test", realm: "LAB.TEST", dn: "CN=Hank,CN=Users," + testBase, source: SourceLoginIdentity}},
		{"sAMAccountName differs from the UPN's user part", LoginOnPremisesSAMAccountName, byMail,
			want{upn: "hhill@lab.test", realm: "LAB.TEST", source: SourceLoginIdentity}},
		{"user in a child domain: sAMAccountName in that domain", LoginOnPremisesSAMAccountName, foreignDomain,
			want{upn: "ivan@child.lab.test", realm: "LAB.TEST", source: SourceLoginIdentity}},
		{"userCertificate still wins: mallory's certificate naming alice is mallory", LoginOnPremisesUPN, l.mallory,
			want{upn: "mallory@lab.test", realm: "LAB.TEST", source: SourceLDAP}},
		{"userCertificate with sAMAccountName", LoginOnPremisesSAMAccountName, l.bob,
			want{upn: "bob@lab.test", realm: "LAB.TEST", source: SourceLDAP}},
		{"certificateUpn: SEG's behaviour, the email is not looked up", LoginCertificateUPN, cloudAlice,
			want{refused: []string{"no user holds the certificate and it has no UPN"}}},
		{"certificateUpn: the cloud UPN is delegated as it is", LoginCertificateUPN, cloudUPN,
			want{upn: "alice.cloud@example.com", realm: "LAB.TEST", source: SourceSAN}},
		{"user without a UPN under onPremisesUpn", LoginOnPremisesUPN, noUPN,
			want{refused: []string{KeyLoginIdentity, "CN=Nora", "no userPrincipalName", string(LoginOnPremisesSAMAccountName)}}},
		{"user without a UPN under onPremisesSamAccountName", LoginOnPremisesSAMAccountName, noUPN,
			want{upn: "nora@lab.test", realm: "LAB.TEST", source: SourceLoginIdentity}},
		{"two users hold the address", LoginOnPremisesUPN, shared,
			want{refused: []string{KeyLoginIdentity, "several directory users hold team@example.com"}}},
		{"nobody holds the address", LoginOnPremisesUPN, stranger,
			want{refused: []string{KeyLoginIdentity + " is onPremisesUpn", "who@example.com", "proxyAddresses", "certificateUpn"}}},
		{"neither UPN nor email", LoginOnPremisesUPN, bare,
			want{refused: []string{KeyLoginIdentity, "neither a UPN nor an email address"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMapper(t, l.config(nil))
			r, err := NewResolver(ResolverConfig{Mapper: m, Realms: testRealms(t), LoginIdentity: tt.login})
			if err != nil {
				t.Fatal(err)
			}
			id, err := r.Resolve(context.Background(), tt.cert)
			if tt.want.refused != nil {
				var re *RefusedError
				if !errors.As(err, &re) {
					t.Fatalf("Resolve = %+v, %v; want a refusal", id, err)
				}
				for _, w := range tt.want.refused {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("refusal lacks %q: %v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if !strings.EqualFold(id.UPN.String(), tt.want.upn) || id.UPN.Realm != tt.want.realm || id.Source != tt.want.source {
				t.Fatalf("Resolve = %s (%s) from %v; want %s (%s) from %v", id.UPN, id.UPN.Realm, id.Source, tt.want.upn, tt.want.realm, tt.want.source)
			}
			if tt.want.dn != "" && id.DN != tt.want.dn {
				t.Errorf("DN = %q, want %q", id.DN, tt.want.dn)
			}
		})
	}
}

// TestLoginIdentityCached: the address search is cached like mappings: a
// second certificate carrying the same email asks the directory for its
// userCertificate only, and the identity says it came from the cache.
func TestLoginIdentityCached(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	hank := ldaptest.User("CN=Hank,CN=Users,"+testBase, "hhill", "hank@lab.test")
	hank.Attrs["mail"] = [][]byte{[]byte("hank@example.com")}
	l.srv.Add(hank)
	m := newMapper(t, l.config(nil))
	r, err := NewResolver(ResolverConfig{Mapper: m, Realms: testRealms(t), LoginIdentity: LoginOnPremisesUPN})
	if err != nil {
		t.Fatal(err)
	}
	cert := testpki.SelfSigned(t, "hank", testpki.Email("hank@example.com")).Cert
	first, err := r.Resolve(context.Background(), cert)
	if err != nil || first.Cached {
		t.Fatalf("first Resolve = %+v, %v; want an uncached answer", first, err)
	}
	before := l.srv.Searches()
	second, err := r.Resolve(context.Background(), cert)
	if err != nil || !second.Cached || second.UPN.String() != "hank@lab.test" {
		t.Fatalf("second Resolve = %+v, %v; want hank@lab.test from the cache", second, err)
	}
	if n := l.srv.Searches() - before; n != 0 {
		t.Fatalf("second Resolve searched the directory %d times, want 0", n)
	}
}

// TestLoginIdentityNeedsTheMapping: any login identity but certificateUpn
// needs the mapping's directory connection; an unknown value is refused
// with the accepted ones.
func TestLoginIdentityNeedsTheMapping(t *testing.T) {
	tests := []struct {
		name   string
		login  LoginIdentity
		mapper Lookup
		words  []string
	}{
		{"no mapping", LoginOnPremisesUPN, nil, []string{KeyLoginIdentity, "cert.mapping.enabled"}},
		{"a lookup that cannot search by address", LoginOnPremisesSAMAccountName, &fakeLookup{}, []string{KeyLoginIdentity}},
		{"unknown value", "cloudUpn", nil, []string{KeyLoginIdentity, "certificateUpn, onPremisesUpn, onPremisesSamAccountName"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewResolver(ResolverConfig{Mapper: tt.mapper, Realms: testRealms(t), LoginIdentity: tt.login})
			if err == nil {
				t.Fatal("NewResolver accepted it")
			}
			for _, w := range tt.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
	if _, err := NewResolver(ResolverConfig{Realms: testRealms(t)}); err != nil {
		t.Fatalf("the default needs no mapping: %v", err)
	}
}

func TestDomainOfDN(t *testing.T) {
	tests := []struct{ dn, want string }{
		{"CN=alice,CN=Users,DC=lab,DC=test", "lab.test"},
		{"CN=x,OU=Staff,DC=Child,DC=Corp,DC=Example", "child.corp.example"},
		{"CN=x,O=nodomain", ""},
		{"not a dn", ""},
	}
	for _, tt := range tests {
		if got := DomainOfDN(tt.dn); got != tt.want {
			t.Errorf("DomainOfDN(%q) = %q, want %q", tt.dn, got, tt.want)
		}
	}
}
