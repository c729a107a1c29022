package identity

import (
	"slices"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/secret"
)

// TestValidateRefusesWhatStartRefuses: what the role's Start refuses when
// it builds the mapping (Build, certmap.New) from the configuration alone,
// Validate refuses too, on the setting at fault, so `segmesh config check`
// no longer passes a file the start then stops on. Before buildProblems
// Validate passed the first three.
func TestValidateRefusesWhatStartRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*config.Config)
		key  string // "": valid
	}{
		{"a search base that is no DN", func(c *config.Config) { c.Gateway.CertMappingLDAPBaseDN = "corp.example" }, config.KeyCertMappingLDAPBaseDN},
		{"a bind user that does not parse as a DN", func(c *config.Config) { c.Gateway.CertMappingLDAPUser = "CN=svc_seg,=Users" }, config.KeyCertMappingLDAPUser},
		{"StartTLS on ldaps://", func(c *config.Config) { c.Segmesh.Identity.LDAPStartTLS = true }, "segmesh.identity.ldapStartTls"},
		// The constructor's refusal is filed under the setting its typed
		// error names (problem.SettingError), not the first key its text
		// holds: on main the password went to cert.mapping.ldap.url (no
		// match, the last setting) and a bind user whose text held the
		// base DN's key went to cert.mapping.ldap.basedn.
		{"no service account password", func(c *config.Config) { c.KCD.ServiceAccountPassword = secret.Secret{} }, "kcd.serviceAccountPassword"},
		{"a bind user naming another key", func(c *config.Config) { c.Gateway.CertMappingLDAPUser = config.KeyCertMappingLDAPBaseDN }, config.KeyCertMappingLDAPUser},
		{"valid", func(c *config.Config) { c.Gateway.CertMappingLDAPBaseDN = "DC=lab,DC=test" }, ""},
		{"valid, KCD off", func(c *config.Config) { c.KCD.Enabled, c.Gateway.CertMappingLDAPBaseDN = false, "corp.example" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fullConfig("ldaps://dc1.lab.test:636", "pw", tc.edit)
			cfg := ConfigFrom(c)
			var startErr error
			if cfg.KCDEnabled {
				_, startErr = cfg.Build(BuildOptions{})
			}
			ps := Validate(c)
			i := slices.IndexFunc(ps, func(p config.Problem) bool { return p.Severity == config.SeverityError })
			if tc.key == "" {
				if startErr != nil || i >= 0 {
					t.Fatalf("start: %v, Validate: %v; want both to accept", startErr, ps)
				}
				return
			}
			if startErr == nil {
				t.Fatal("the start's Build accepted it")
			}
			if i < 0 || ps[i].Key != tc.key || ps[i].Fix == "" {
				t.Fatalf("Validate = %v; want an error on %s with a fix (the start: %v)", ps, tc.key, startErr)
			}
		})
	}
}

// TestAttackBuildRefusalShowsNoPassword: the constructor's refusals that
// BuildProblems now files under their setting quote cert.mapping.ldap.url
// as written (certmap.New's "has no host", "binds without TLS"). A URL
// holding the bind password, in its user information or after it, must not
// reach `config check`'s output or the start's log through them: the
// rules refuse a URL with user information first, masked (held on main).
func TestAttackBuildRefusalShowsNoPassword(t *testing.T) {
	const pw = "Bind-Pa55word"
	for _, url := range []string{
		"ldaps://svc:" + pw + "@/DC=lab,DC=test",
		"ldap://svc:" + pw + "@/",
		"ldap://svc:" + pw + "@dc1.lab.test:389",
	} {
		t.Run(url, func(t *testing.T) {
			c := fullConfig(url, pw, func(c *config.Config) { c.KCD.Domains = nil })
			for _, withDomain := range []bool{false, true} {
				if withDomain {
					c.KCD.Domains = []config.DomainPair{{Domain: "LAB.TEST"}}
				}
				ps := Validate(c)
				if !slices.ContainsFunc(ps, func(p config.Problem) bool { return p.Severity == config.SeverityError }) {
					t.Errorf("Validate accepted %s (domains: %v)", url, withDomain)
				}
				for _, p := range ps {
					if strings.Contains(p.String(), pw) {
						t.Errorf("a problem shows the password: %s", p)
					}
				}
			}
		})
	}
}
