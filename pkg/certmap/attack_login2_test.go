package certmap

import (
	"context"
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
