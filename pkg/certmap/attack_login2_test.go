package certmap

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
)

// TestAttackLoginIdentityDirectoryDown: under a login identity other than
// certificateUpn the admin has said the certificate's SAN UPN is not the
// on-premises name (a cloud UPN). Here j.smith@lab.test is the cloud UPN of
// John (on-premises john.smith@lab.test, found by proxyAddresses), while
// another user's sAMAccountName is j.smith, so a KDC resolves
// j.smith@lab.test as that user's implicit UPN. With the directory down,
// fallbackWhenUnavailable must not delegate the SAN UPN as it is: that is
// a ticket for the other user. Refused as unavailable (503) instead.
// certificateUpn keeps its documented fallback (the SAN UPN is the name).
// Attacker review of review 1's residue.
func TestAttackLoginIdentityDirectoryDown(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	john := ldaptest.User("CN=John Smith,CN=Users,"+testBase, "john.smith", "john.smith@lab.test")
	john.Attrs["proxyAddresses"] = [][]byte{[]byte("SMTP:john.smith@lab.test"), []byte("smtp:j.smith@lab.test")}
	l.srv.Add(john, ldaptest.User("CN=Jane Smith,CN=Users,"+testBase, "j.smith", "jane@lab.test"))
	cert := testpki.SelfSigned(t, "phone", testpki.UPN("j.smith@lab.test")).Cert

	tests := []struct {
		name     string
		login    LoginIdentity
		down     bool
		fallback bool
		want     string // delegated UPN; "" refused
		unavail  bool
	}{
		{name: "directory up: the address's holder", login: LoginOnPremisesUPN, want: "john.smith@lab.test"},
		{name: "onPremisesUpn, down, no fallback", login: LoginOnPremisesUPN, down: true, unavail: true},
		{name: "onPremisesUpn, down, fallback", login: LoginOnPremisesUPN, down: true, fallback: true, unavail: true},
		{name: "onPremisesSamAccountName, down, fallback", login: LoginOnPremisesSAMAccountName, down: true, fallback: true, unavail: true},
		{name: "certificateUpn, down, fallback: the SAN UPN as documented", login: LoginCertificateUPN, down: true, fallback: true, want: "j.smith@lab.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := l.config(nil)
			cfg.CacheSize = -1
			m := newMapper(t, cfg)
			if tt.down {
				l.srv.Stop()
				t.Cleanup(func() {
					if err := l.srv.Restart(); err != nil {
						t.Fatal(err)
					}
				})
			}
			r, err := NewResolver(ResolverConfig{Mapper: m, Realms: testRealms(t), LoginIdentity: tt.login, FallbackWhenUnavailable: tt.fallback})
			if err != nil {
				t.Fatal(err)
			}
			id, err := r.Resolve(context.Background(), cert)
			if tt.want != "" {
				if err != nil || id.UPN.String() != tt.want {
					t.Fatalf("Resolve = %s, %v; want %s", id.UPN, err, tt.want)
				}
				return
			}
			var re *RefusedError
			if !errors.As(err, &re) || re.Unavailable != tt.unavail {
				t.Fatalf("Resolve = %s (source %s), %v; want a refusal (unavailable %v): the cloud UPN names another on-premises user", id.UPN, id.Source, err, tt.unavail)
			}
		})
	}
}

// TestAttackLoginIdentityUPNWins: an address that is one user's
// userPrincipalName and another's mail or proxyAddresses. From the
// certificate's SAN UPN the UPN holder is the answer, as a KDC resolves
// that name (AD's UPN first) and as certificateUpn would delegate it. From
// a SAN email it is not: AD CS writes the requester's own mail into the
// certificate, so a user who can set his mail to alice's UPN gets a
// certificate carrying it, and the UPN rule would delegate him as alice.
// Several holders of an email are refused as ambiguous.
func TestAttackLoginIdentityUPNWins(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	eve := ldaptest.User("CN=Eve,CN=Users,"+testBase, "eve2", "eve2@lab.test")
	eve.Attrs["mail"] = [][]byte{[]byte("alice@lab.test")}
	eve.Attrs["proxyAddresses"] = [][]byte{[]byte("SMTP:eve2@lab.test"), []byte("smtp:bob.smith@lab.test")}
	l.srv.Add(eve)
	tests := []struct {
		name string
		opts []testpki.Option
		want string // "" refused
	}{
		{"SAN UPN held as UPN by alice and as mail by eve: alice, as the KDC", []testpki.Option{testpki.UPN("alice@lab.test")}, "alice@lab.test"},
		{"SAN email alice's UPN and eve's mail: ambiguous", []testpki.Option{testpki.Email("alice@lab.test")}, ""},
		{"SAN email bob's UPN and eve's proxy address: ambiguous", []testpki.Option{testpki.Email("bob.smith@lab.test")}, ""},
		{"SAN email held by eve alone", []testpki.Option{testpki.Email("eve2@lab.test")}, "eve2@lab.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resolveAs(t, l, LoginOnPremisesUPN, testpki.SelfSigned(t, "phone", tt.opts...).Cert, tt.want)
		})
	}
}

// TestAttackComputerAccountHoldsTheCertificate: the certificate and an
// address sit on a computer account (objectClass user and computer, as AD
// has it; one a user could create by ms-DS-MachineAccountQuota). The
// searches use (objectClass=user), so the computer is found, but what is
// delegated is never another user: a computer holding the certificate has
// no userPrincipalName and is refused under every login identity; found
// by its mail under onPremisesSamAccountName it is the computer itself
// (EVIL$@lab.test, which no mailbox answers). AD keeps
// userPrincipalName unique in the forest, so a computer cannot hold a
// user's. Attacker review; held (disabled accounts: the KDC refuses them at
// S4U2Self; ldaptest has no extensible match to search on
// userAccountControl).
func TestAttackComputerAccountHoldsTheCertificate(t *testing.T) {
	l := newLab(t, ldaptest.Options{})
	phone := testpki.SelfSigned(t, "phone", testpki.Email("evil-host@lab.test")).Cert
	evil := ldaptest.User("CN=EVIL,CN=Computers,"+testBase, "EVIL$", "", phone.Raw)
	evil.Attrs["objectClass"] = append(evil.Attrs["objectClass"], []byte("computer"))
	evil.Attrs["mail"] = [][]byte{[]byte("evil-host@lab.test")}
	l.srv.Add(evil)
	unpublished := testpki.SelfSigned(t, "phone2", testpki.Email("evil-host@lab.test")).Cert
	for _, tt := range []struct {
		name  string
		cert  *x509.Certificate
		login LoginIdentity
		want  string // "" refused
	}{
		{"on the computer, certificateUpn", phone, LoginCertificateUPN, ""},
		{"on the computer, onPremisesUpn", phone, LoginOnPremisesUPN, ""},
		{"on the computer, onPremisesSamAccountName", phone, LoginOnPremisesSAMAccountName, ""},
		{"the computer's mail, onPremisesUpn", unpublished, LoginOnPremisesUPN, ""},
		{"the computer's mail, onPremisesSamAccountName: the computer itself", unpublished, LoginOnPremisesSAMAccountName, "EVIL$@lab.test"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resolveAs(t, l, tt.login, tt.cert, tt.want)
		})
	}
}

// resolveAs resolves cert against l's directory (no cache) under login and
// fails t unless it gives want ("": a refusal).
func resolveAs(t *testing.T, l *lab, login LoginIdentity, cert *x509.Certificate, want string) {
	t.Helper()
	cfg := l.config(nil)
	cfg.CacheSize = -1
	r, err := NewResolver(ResolverConfig{Mapper: newMapper(t, cfg), Realms: testRealms(t), LoginIdentity: login})
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.Resolve(context.Background(), cert)
	if want == "" {
		if _, ok := errors.AsType[*RefusedError](err); !ok {
			t.Fatalf("Resolve = %s (%s), %v; want a refusal", id.UPN, id.DN, err)
		}
		return
	}
	if err != nil || id.UPN.String() != want {
		t.Fatalf("Resolve = %s (%s), %v; want %s", id.UPN, id.DN, err, want)
	}
}
