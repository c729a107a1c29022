//go:build lab

package diagnose

import (
	"context"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/pkg/config"
)

// TestLabMappingStepReachesTheIdentityRolesVerdict runs diagnose's mapping
// step and the identity role, both built by identity.Config.Build from the
// same configuration, against Samba: StartTLS (with the DC's CA and with a CA
// that does not issue it: a diagnose that bound in plain text, as it once did,
// would pass where the role fails, since the lab allows plain binds), strong
// mapping, and the fallback while the directory is down. Each case states the
// verdict, so a case where both are wrong alike fails too.
func TestLabMappingStepReachesTheIdentityRolesVerdict(t *testing.T) {
	lab := labenv.Up(t)
	startTLS := func(caFile string) func(*config.Config) {
		return func(c *config.Config) {
			c.Gateway.CertMappingLDAPURL = lab.LDAPURL
			c.Segmesh.Identity.LDAPStartTLS = true
			c.Segmesh.Identity.LDAPCAFile = caFile
		}
	}
	cases := []struct {
		name  string
		user  string
		edit  func(*config.Config)
		fault bool // the LDAP forwarder is down
		pass  bool
	}{
		{name: "StartTLS on ldap://, the DC's CA", user: "bob", edit: startTLS(lab.LDAPCA), pass: true},
		{name: "StartTLS on ldap://, a CA that did not issue the DC's certificate", user: "bob", edit: startTLS(lab.CAPEM[0])},
		{name: "strong mapping refuses a SAN UPN the directory does not bind", user: "alice",
			edit: func(c *config.Config) { c.Segmesh.Identity.StrongMapping = true }},
		{name: "strong mapping off serves the SAN UPN", user: "alice", pass: true},
		{name: "fallback while the directory is down", user: "alice", fault: true, pass: true,
			edit: func(c *config.Config) { c.Segmesh.Identity.FallbackWhenUnavailable = true }},
		{name: "no fallback while the directory is down", user: "alice", fault: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := labConfig(t, lab)
			if !cfg.MappingHonoured() {
				t.Fatal("the lab configuration has certificate mapping off")
			}
			if tc.edit != nil {
				tc.edit(cfg)
			}
			if tc.fault {
				lab.Fault(t, "ldap", true)
			}
			u := lab.User(tc.user)
			certPEM := readFile(t, u.Cert)
			rep := Run(context.Background(), Options{Config: cfg, CertPEM: certPEM, ChainPEM: readFile(t, u.Chain), StepTimeout: 20 * time.Second})
			var mapping StepResult
			for _, s := range rep.Steps {
				if s.Name == StepMapping {
					mapping = s
				}
			}
			leaf, err := parseCerts(certPEM)
			if err != nil {
				t.Fatal(err)
			}
			roleErr := roleVerdict(t, cfg, leaf[0].Raw)
			if rolePass := roleErr == nil; rolePass != tc.pass {
				t.Errorf("identity role: err %v, want pass=%v", roleErr, tc.pass)
			}
			if got := mapping.Status == StatusPass; got != tc.pass {
				t.Errorf("diagnose mapping step %s (%s %s %s), want pass=%v", mapping.Status, mapping.Detail, mapping.Cause, mapping.Fix, tc.pass)
			}
		})
	}
}
