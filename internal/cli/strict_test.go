package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/suite"
	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
)

// strictBase is a configuration `segmesh run` accepts (KCD on, mapping
// off, loopback listeners on port 0); each case below breaks one value.
func strictBase(t *testing.T, dir string) map[string]any {
	t.Helper()
	writeCert(t, filepath.Join(dir, "ca.pem"), testpki.NewCA(t, "Strict CA"))
	if err := os.WriteFile(filepath.Join(dir, "notacert.pem"), []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"clientCertTrustStorePath": "ca.pem",
		"kcd": map[string]any{"enabled": true, "targetSPN": "HTTP/exchange.lab.test", "serviceAccountUserName": "svc_seg",
			"serviceAccountPassword": "Svc-Secret-456.plaintext",
			"domains":                []any{map[string]any{"domain": "LAB.TEST", "domainController": "dc1.strict.invalid"}}},
		"customGatewaySettings": map[string]any{},
		"segmesh": map[string]any{
			"edge":     map[string]any{"listen": "127.0.0.1:0", "exchangeUrls": []any{"https://exchange.lab.test"}},
			"admin":    map[string]any{"listen": "127.0.0.1:0"},
			"identity": map[string]any{},
		},
	}
}

// writeStrict writes strictBase with change applied as dir/config.json.
func writeStrict(t *testing.T, dir string, change func(map[string]any)) string {
	t.Helper()
	m := strictBase(t, dir)
	change(m)
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mapping(url string) func(m map[string]any) {
	return func(m map[string]any) {
		g := m["customGatewaySettings"].(map[string]any)
		g["cert.mapping.enabled"] = "true"
		g["cert.mapping.ldap.url"] = url
		g["cert.mapping.ldap.user"] = "CN=svc_seg,CN=Users,DC=lab,DC=test"
	}
}

func identitySetting(k string, v any) func(m map[string]any) {
	return func(m map[string]any) { m["segmesh"].(map[string]any)["identity"].(map[string]any)[k] = v }
}

// TestConfigCheckRefusesWhatRunRefuses feeds every value `segmesh run`
// refuses through `segmesh config check` and expects the same problems,
// word for word. Before, check passed ldaps://host/?sub, ldaps://svc@host,
// ldaps://host/notadn, strong mapping without mapping and a bad UPN suffix,
// which run then refused; and, until session 9, what the role constructors
// and the listeners refuse (the last four cases).
func TestConfigCheckRefusesWhatRunRefuses(t *testing.T) {
	cases := []struct {
		name   string
		change func(m map[string]any)
	}{
		{"LDAP URL with a query", mapping("ldaps://dc1.lab.test/?sub")},
		{"LDAP URL with a user", mapping("ldaps://svc@dc1.lab.test")},
		{"LDAP URL whose path is not a DN", mapping("ldaps://dc1.lab.test/notadn")},
		{"LDAP URL not ldap", mapping("https://dc1.lab.test")},
		{"strong mapping without mapping", identitySetting("strongMapping", true)},
		{"UPN suffix that is not a domain name", identitySetting("upnSuffixRealms", map[string]any{"not a domain": "LAB.TEST"})},
		{"UPN suffix to an unknown realm", identitySetting("upnSuffixRealms", map[string]any{"contoso.com": "OTHER.TEST"})},
		{"negative pool size", identitySetting("ldapPoolSize", -1)},
		{"lower-case domain", func(m map[string]any) {
			m["kcd"].(map[string]any)["domains"] = []any{map[string]any{"domain": "lab.test", "domainController": "dc1.strict.invalid"}}
		}},
		{"SPN with a lower-case service class", func(m map[string]any) { m["kcd"].(map[string]any)["targetSPN"] = "http/exchange.lab.test" }},
		{"Exchange URL not http", func(m map[string]any) {
			m["segmesh"].(map[string]any)["edge"].(map[string]any)["exchangeUrls"] = []any{"ftp://mail.lab.test"}
		}},
		// The trust store is opened by the edge's Validate (config.TrustProblems):
		// a file that holds no certificate, a console chain that cannot be read.
		{"trust store file holding no certificate", func(m map[string]any) { m["clientCertTrustStorePath"] = "ca.pem, notacert.pem" }},
		{"console chain unreadable", func(m map[string]any) {
			delete(m, "clientCertTrustStorePath")
			m["clientCertificateChain"] = "console-chain.pem"
		}},
		// What the roles' constructors and the listeners refuse (session 9):
		// run stopped at the start, after check had passed it.
		{"service account written as a UPN", func(m map[string]any) { m["kcd"].(map[string]any)["serviceAccountUserName"] = "svc_seg@lab.test" }},
		{"search base that is no DN", func(m map[string]any) {
			mapping("ldaps://dc1.lab.test:636")(m)
			m["customGatewaySettings"].(map[string]any)["cert.mapping.ldap.basedn"] = "lab.test"
		}},
		{"StartTLS on ldaps://", func(m map[string]any) {
			mapping("ldaps://dc1.lab.test:636")(m)
			identitySetting("ldapStartTls", true)(m)
		}},
		{"the admin and the edge on one port", func(m map[string]any) {
			m["segmesh"].(map[string]any)["edge"].(map[string]any)["listen"] = "127.0.0.1:18443"
			m["segmesh"].(map[string]any)["admin"].(map[string]any)["listen"] = "127.0.0.1:18443"
		}},
	}
	// Without a change the base passes check: each case's refusal is its own.
	base := writeStrict(t, t.TempDir(), func(map[string]any) {})
	if code, out, _ := run(t, "config", "check", "-q", base); code != 0 {
		t.Fatalf("the base configuration does not pass config check (exit %d):\n%s", code, out)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeStrict(t, t.TempDir(), tc.change)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			runErr := suite.Run(ctx, suite.Options{ConfigPath: path, Stderr: &strings.Builder{}, Ready: func(string) { cancel() }})
			var ce *config.Error
			if !errors.As(runErr, &ce) {
				t.Fatalf("run: %v; want a *config.Error listing the problems", runErr)
			}
			code, out, _ := run(t, "config", "check", "-q", path)
			if code != 1 {
				t.Fatalf("config check exit %d, run refused with:\n%v\ncheck said:\n%s", code, runErr, out)
			}
			for _, p := range ce.Problems {
				if !strings.Contains(out, p.String()) {
					t.Errorf("run refused with\n  %s\nwhich config check does not say:\n%s", p, out)
				}
			}
		})
	}
}

// TestConfigCheckShowsDefaultsInForce: the effective configuration shows
// the values in force, not 0 or "" for keys left to their default, and
// says which ones came from the defaults.
func TestConfigCheckShowsDefaultsInForce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(`{"segmesh": {"identity": {"ldapPoolSize": 8}, "edge": {"exchangeUrls": ["https://exchange.lab.test"]}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, "config", "check", path)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{
		`"negativeCacheTtlSeconds": 60`,
		`"ldapPoolSize": 8`,
		`"stateDir": "crl-cache"`,
		`"installDir": "` + dir + `"`,
		`"secretKeyFile": "` + filepath.Join(dir, "config.key") + `"`,
		"  segmesh.identity.negativeCacheTtlSeconds: 60\n",
		"  segmesh.identity.ldapPoolSize: 8 (default: 4)\n",
		// The HTTP/1.1 engine in force when the file names none: the relay
		// (issue 25), with no per-host connection cap.
		"  segmesh.edge.http1Engine: \"relay\"\n",
		"  segmesh.edge.relayMaxConnsPerHost: 0\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	defaults := out[strings.Index(out, "defaults in force"):strings.Index(out, "differs from the defaults")]
	if strings.Contains(defaults, "ldapPoolSize") {
		t.Errorf("ldapPoolSize is written in the file but listed among the defaults:\n%s", defaults)
	}
}
