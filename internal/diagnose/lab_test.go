//go:build lab

package diagnose

import (
	"context"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/secret"
)

// labConfig loads the segmesh config lab.sh writes, as `segmesh run` does.
func labConfig(t *testing.T, lab *labenv.Env) *config.Config {
	t.Helper()
	cfg, _, err := config.Load(lab.SegmeshConfig)
	if err != nil {
		t.Fatalf("load %s: %v", lab.SegmeshConfig, err)
	}
	return cfg
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unknownUserCert issues, with the lab's issuing CA, a device certificate
// whose SAN UPN names no directory user.
func unknownUserCert(t *testing.T, lab *labenv.Env) []byte {
	t.Helper()
	caDir := filepath.Dir(lab.CAPEM[0])
	ca := testpki.LoadCA(t, filepath.Join(caDir, "inter.pem"), filepath.Join(caDir, "inter.key"))
	return ca.Device(t, "nobody", testpki.Subject(pkix.Name{CommonName: "nobody", Organization: []string{"Segmesh Lab"}}),
		testpki.UPN("nobody@lab.test")).PEM()
}

// rbcdCase: a service account with RBCD only is served from Samba 4.19 on;
// 4.17 refuses it like no delegation at all.
func rbcdCase(lab *labenv.Env) diagCase {
	c := diagCase{name: "RBCD only", user: "alice", edit: func(c *config.Config) { c.KCD.ServiceAccountUserName = lab.Raw["LAB_SVC_RBCD"] }}
	if !lab.AtLeast("4.19") {
		c.step, c.code, c.fixHas = StepS4U2Proxy, "KDC_ERR_BADOPTION", []string{"msDS-AllowedToActOnBehalfOfOtherIdentity"}
	}
	return c
}

// policyCases: the authentication policies of deploy/lab/policy.sh (Samba
// 4.20+): svc_denied is refused at S4U2Proxy by exchange$'s
// AllowedToAuthenticateTo, svc_armor's TGT by its AllowedToAuthenticateFrom
// without an armor account (the fix names FAST and the setting), and
// served with segmesh.ticket.armorAccountUserName seggw$ (FAST).
func policyCases(lab *labenv.Env) []diagCase {
	if _, err := os.Stat(filepath.Join(lab.Raw["LAB_DIR"], "samba", ".policies")); err != nil {
		return nil
	}
	machine, err := os.ReadFile(filepath.Join(lab.Raw["LAB_DIR"], "secrets", "machine"))
	if err != nil {
		return nil
	}
	return []diagCase{
		{name: "target's authentication policy", user: "alice", edit: func(c *config.Config) { c.KCD.ServiceAccountUserName = "svc_denied" },
			step: StepS4U2Proxy, code: "KDC_ERR_POLICY", fixHas: []string{"AllowedToAuthenticateTo", "svc_denied", "not the user"},
			detail: map[string]string{StepS4U2Proxy: "NTSTATUS 0xc0000413"}},
		{name: "policy requires armoring", user: "alice", edit: func(c *config.Config) { c.KCD.ServiceAccountUserName = "svc_armor" },
			step: StepTGT, code: "KDC_ERR_POLICY", fixHas: []string{"AllowedToAuthenticateFrom", "FAST", "armor account", "svc_armor"},
			detail: map[string]string{StepTGT: "NTSTATUS 0xc0000070"}},
		{name: "armoured by the armor account", user: "alice", edit: func(c *config.Config) {
			c.KCD.ServiceAccountUserName = "svc_armor"
			c.Segmesh.Ticket.ArmorAccountUserName = "seggw$"
			c.Segmesh.Ticket.ArmorAccountPassword = secret.New(strings.TrimSpace(string(machine)))
		}},
	}
}

// diagCase is one TestLabDiagnose case.
type diagCase struct {
	name   string
	user   string
	cert   func(t *testing.T) []byte
	edit   func(c *config.Config)
	spn    string
	fault  string
	step   string // "" means every step passes
	code   string
	fixHas []string
	detail map[string]string // step → words its detail holds
}

// TestLabDiagnose runs diagnose against the lab for each failure case the
// issue names and checks the failing step, its code and the fix's words.
func TestLabDiagnose(t *testing.T) {
	lab := labenv.Up(t)
	cases := []diagCase{
		{name: "alice passes", user: "alice", detail: map[string]string{
			StepMapping: "alice@lab.test", StepS4U2Proxy: "HTTP/exchange.lab.test", StepExchange: "alice"}},
		{name: "bob mapped by LDAP", user: "bob", detail: map[string]string{StepMapping: "LDAP mapping"}},
		{name: "unknown user", cert: func(t *testing.T) []byte { return unknownUserCert(t, lab) },
			step: StepS4U2Self, code: "KDC_ERR_C_PRINCIPAL_UNKNOWN", fixHas: []string{"altSecurityIdentities", "Kerberos:USERNAME@DOMAIN.NAME", "certificate mapping"}},
		{name: "UPN mismatch without mapping", user: "carol", edit: func(c *config.Config) { c.Gateway.CertMappingEnabled = false },
			step: StepS4U2Self, code: "KDC_ERR_C_PRINCIPAL_UNKNOWN", fixHas: []string{"altSecurityIdentities", "Kerberos:USERNAME@DOMAIN.NAME"}},
		{name: "SPN not delegated", user: "alice", edit: func(c *config.Config) { c.KCD.TargetSPN = lab.OtherSPN },
			step: StepS4U2Proxy, code: "KDC_ERR_BADOPTION", fixHas: []string{"msDS-AllowedToDelegateTo", lab.OtherSPN}},
		{name: "SPN flag", user: "alice", spn: lab.OtherSPN,
			step: StepS4U2Proxy, code: "KDC_ERR_BADOPTION", fixHas: []string{"msDS-AllowedToDelegateTo", lab.OtherSPN}},
		{name: "neither kind of delegation", user: "alice", edit: func(c *config.Config) { c.KCD.ServiceAccountUserName = lab.Raw["LAB_SVC_NODELEG"] },
			step: StepS4U2Proxy, code: "KDC_ERR_BADOPTION", fixHas: []string{"msDS-AllowedToDelegateTo", "Use any authentication protocol",
				"msDS-AllowedToActOnBehalfOfOtherIdentity", "add-principal 'EXCHANGE$' svc_nodeleg"}},
		{name: "Kerberos-only delegation", user: "alice", edit: func(c *config.Config) { c.KCD.ServiceAccountUserName = lab.Raw["LAB_SVC_KONLY"] },
			step: StepS4U2Proxy, code: "KDC_ERR_BADOPTION", fixHas: []string{"not forwardable", "Use Kerberos only", "Use any authentication protocol"}},
		rbcdCase(lab),
		{name: "sensitive user", user: "eve",
			step: StepS4U2Proxy, code: "KDC_ERR_BADOPTION", fixHas: []string{"sensitive and cannot be delegated", "not forwardable"}},
		{name: "disabled user", user: "dave", step: StepS4U2Self, fixHas: []string{"disabled"}},
		{name: "revoked certificate", user: "alice-revoked", step: StepRevocation, code: "revoked", fixHas: []string{"new certificate"}},
		{name: "CDP down", user: "alice", fault: "cdp", step: StepRevocation, code: "cdp_unreachable", fixHas: []string{"reachable over HTTP", "over LDAP and not HTTP"}},
		{name: "LDAP bind failure", user: "bob", edit: func(c *config.Config) { c.Gateway.CertMappingLDAPUser = "CN=nobody,CN=Users,DC=lab,DC=test" },
			step: StepMapping, code: "ldap_bind", fixHas: []string{"Distinguished Name", "cert.mapping.ldap.user"}},
		{name: "untrusted CA", user: "alice-ca3", step: StepTrust, code: "unknown_authority", fixHas: []string{"clientCertTrustStorePath", "Microsoft Management Console"}},
		// The LDAP bind uses the same password, so the mapping fails first...
		{name: "wrong service account password", user: "alice", edit: func(c *config.Config) { c.KCD.ServiceAccountPassword = secret.New("wrong") },
			step: StepMapping, code: "ldap_bind", fixHas: []string{"kcd.serviceAccountPassword"}},
		// ...and without mapping, the TGT does.
		{name: "wrong service account password without mapping", user: "alice", edit: func(c *config.Config) {
			c.KCD.ServiceAccountPassword = secret.New("wrong")
			c.Gateway.CertMappingEnabled = false
		}, step: StepTGT, fixHas: []string{"kcd.serviceAccountPassword"}},
	}
	cases = append(cases, policyCases(lab)...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := labConfig(t, lab)
			if tc.edit != nil {
				tc.edit(cfg)
			}
			if tc.fault != "" {
				lab.Fault(t, tc.fault, true)
			}
			var certPEM, chainPEM []byte
			if tc.cert != nil {
				certPEM = tc.cert(t)
			} else {
				u := lab.User(tc.user)
				certPEM, chainPEM = readFile(t, u.Cert), readFile(t, u.Chain)
			}
			var progress []string
			rep := Run(context.Background(), Options{Config: cfg, CertPEM: certPEM, ChainPEM: chainPEM, SPN: tc.spn,
				Progress: func(r StepResult) { progress = append(progress, r.Name) }})
			if len(progress) != len(Steps()) {
				t.Errorf("progress saw %v, want every step", progress)
			}
			if tc.step == "" {
				if !rep.OK {
					t.Fatalf("failed at %s: %+v", rep.FailedStep, rep.Steps)
				}
				for _, s := range rep.Steps {
					if s.Status != StatusPass {
						t.Errorf("%s: %s, want pass", s.Name, s.Status)
					}
					if w, ok := tc.detail[s.Name]; ok && !strings.Contains(s.Detail, w) {
						t.Errorf("%s detail %q lacks %q", s.Name, s.Detail, w)
					}
				}
				return
			}
			if rep.OK || rep.FailedStep != tc.step {
				t.Fatalf("failed step %q (ok %v), want %q: %+v", rep.FailedStep, rep.OK, tc.step, rep.Steps)
			}
			var failed StepResult
			for _, s := range rep.Steps {
				if s.Name == tc.step {
					failed = s
				}
			}
			if tc.code != "" && failed.Code != tc.code {
				t.Errorf("code %q, want %q (cause %s)", failed.Code, tc.code, failed.Cause)
			}
			if w, ok := tc.detail[tc.step]; ok && !strings.Contains(failed.Cause, w) {
				t.Errorf("cause %q lacks %q", failed.Cause, w)
			}
			for _, w := range tc.fixHas {
				if !strings.Contains(failed.Fix, w) {
					t.Errorf("fix lacks %q:\n%s\n(cause: %s)", w, failed.Fix, failed.Cause)
				}
			}
			last := rep.Steps[len(rep.Steps)-1]
			if tc.step != StepExchange && (last.Status != StatusSkip || !strings.HasPrefix(last.Detail, "skipped: needs")) {
				t.Errorf("last step %+v, want skipped", last)
			}
			assertNoSecret(t, rep, lab.SvcPassword(t))
		})
	}
}
