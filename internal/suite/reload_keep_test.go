package suite

import (
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/secret"
)

// TestKeepSettings: the configuration a reload hands the roles has each
// setting that takes a restart at the running value (a nested setting, a
// secret, a list of objects, a custom gateway setting), every other
// setting at the new one, and next itself unchanged.
func TestKeepSettings(t *testing.T) {
	from := config.Default()
	from.KCD.ServiceAccountPassword = secret.New("old")
	from.KCD.Domains = []config.DomainPair{{Domain: "LAB.TEST"}}
	from.Gateway.CertMappingLDAPURL = "ldaps://dc1.lab.test:3269"
	from.Segmesh.DNSServer = "127.0.0.1:53"
	next := from
	next.KCD.ServiceAccountPassword = secret.New("new")
	next.KCD.Domains = []config.DomainPair{{Domain: "OTHER.TEST"}}
	next.Gateway.CertMappingLDAPURL = "ldaps://dc2.lab.test:3269"
	next.Segmesh.DNSServer = "127.0.0.2:53"
	next.Segmesh.Identity.LDAPPoolSize = 9
	next.Segmesh.Telemetry.LogLevel = "debug"

	got := keepSettings(&next, &from, []string{"kcd.serviceAccountPassword", "kcd.domains", "cert.mapping.ldap.url",
		"segmesh.dnsServer", "segmesh.no.such.key", "nosuch"})
	for _, c := range []struct{ key, got, want string }{
		{"kcd.serviceAccountPassword", got.KCD.ServiceAccountPassword.Reveal(), "old"},
		{"kcd.domains", got.KCD.Domains[0].Domain, "LAB.TEST"},
		{"cert.mapping.ldap.url", got.Gateway.CertMappingLDAPURL, "ldaps://dc1.lab.test:3269"},
		{"segmesh.dnsServer", got.Segmesh.DNSServer, "127.0.0.1:53"},
		{"segmesh.telemetry.logLevel (not kept)", got.Segmesh.Telemetry.LogLevel, "debug"},
		{"next's own password", next.KCD.ServiceAccountPassword.Reveal(), "new"},
		{"next's own URL", next.Gateway.CertMappingLDAPURL, "ldaps://dc2.lab.test:3269"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.key, c.got, c.want)
		}
	}
	if got.Segmesh.Identity.LDAPPoolSize != 9 {
		t.Errorf("segmesh.identity.ldapPoolSize = %d, want the new 9", got.Segmesh.Identity.LDAPPoolSize)
	}
	if len(diffConfig(got, &next)) != 4 {
		t.Errorf("kept vs next differ in %+v, want the four kept settings", diffConfig(got, &next))
	}
}
