package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

const checkDoc = `{
  "clientCertTrustStorePath": "config/ssl-certs/CA01.pem, config/ssl-certs/CA-combined.pfx",
  "clientCertTrustStorePasscode": "pfx-Secret-123.plaintext",
  "kcd": {"enabled": true, "targetSPN": "HTTP/exchange.lab.test", "serviceAccountUserName": "svc_seg",
    "serviceAccountPassword": "Svc-Secret-456.plaintext", "domains": [{"domain": "LAB.TEST", "domainController": "dc1.lab.test"}]},
  "segmesh": {"edge": {"exchangeUrls": ["https://exchange.lab.test"]}}
}`

func TestConfigCheckPEMPlusPFXFailsNamingTheKeyAndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, []byte(checkDoc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, "config", "check", p)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	if !strings.Contains(out, "error: clientCertTrustStorePath") || !strings.Contains(out, "names both PEM and PFX files") {
		t.Fatalf("output does not name clientCertTrustStorePath:\n%s", out)
	}
	after, _ := os.ReadFile(p)
	if string(after) != checkDoc {
		t.Fatal("config check changed config.json")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("config check wrote files: %v", entries)
	}
}

// writeCert writes a certificate as PEM to path, creating its directory.
func writeCert(t *testing.T, path string, c *testpki.Cert) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, c.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestConfigCheckOpensTheTrustStore(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	doc := strings.Replace(checkDoc, "config/ssl-certs/CA01.pem, config/ssl-certs/CA-combined.pfx", "config/ssl-certs/missing.pem", 1)
	doc = strings.Replace(doc, "pfx-Secret-123.plaintext", "", 1)
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, "config", "check", p)
	if code != 1 || !strings.Contains(out, "error: clientCertTrustStorePath") || !strings.Contains(out, "missing.pem") {
		t.Fatalf("exit %d; a missing trust file must be an error naming the key:\n%s", code, out)
	}
}

func TestConfigCheckMasksSecretsAndShowsDiff(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	writeCert(t, filepath.Join(dir, "config/ssl-certs/CA01.pem"), testpki.NewCA(t, "Lab Device CA"))
	doc := strings.Replace(checkDoc, ", config/ssl-certs/CA-combined.pfx", "", 1)
	doc = strings.Replace(doc, `"clientCertTrustStorePasscode": "pfx-Secret-123.plaintext"`, `"clientCertTrustStorePasscode": ""`, 1)
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, "config", "check", p)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, leak := range []string{"Svc-Secret-456"} {
		if strings.Contains(out, leak) {
			t.Fatalf("config check printed a secret:\n%s", out)
		}
	}
	for _, want := range []string{`"serviceAccountPassword": "[REDACTED]"`, "kcd.enabled: true (default: false)", `"remote.crl.fetch.interval.in.minutes": 1440`, "result: 0 error(s)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("missing %q in:\n%s", want, out)
		}
	}
}

func TestUnknownCommandsAndRoles(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"config"}, 2, "config needs a subcommand"},
		{[]string{"run", "config.json"}, 2, "did you mean --config config.json?"},
		{[]string{"run", "--roles=ticket,gateway"}, 1, `unknown role "gateway"`},
		{[]string{}, 2, "Usage:"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errOut := run(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d stderr %q; want %d and %q", code, errOut, tt.code, tt.want)
			}
		})
	}
}

func TestRolesListsEveryRole(t *testing.T) {
	code, out, _ := run(t, "roles")
	if code != 0 {
		t.Fatal(code)
	}
	for _, r := range []string{"crl", "identity", "ticket", "edge"} {
		if !strings.Contains(out, r+" ") {
			t.Fatalf("roles does not list %s:\n%s", r, out)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		code, out, _ := run(t, arg)
		if code != 0 || !strings.HasPrefix(out, "segmesh ") || !strings.Contains(out, "go1.") {
			t.Fatalf("%s: exit %d, %q", arg, code, out)
		}
	}
}
