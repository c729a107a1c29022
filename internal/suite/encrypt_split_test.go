package suite

import (
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// splitConfig is a valid config.json whose two secrets, of different roles,
// are written with the .plaintext suffix.
const splitConfig = `{
  "clientCertTrustStorePath": "config/ssl-certs/CA01.pem",
  "clientCertTrustStorePasscode": "Edge-S3cret.plaintext",
  "kcd": {
    "enabled": true,
    "targetSPN": "HTTP/exchange.lab.test",
    "serviceAccountUserName": "svc_seg",
    "serviceAccountPassword": "Passw0rd!.plaintext",
    "domains": [{"domain": "LAB.TEST", "domainController": "dc1.lab.test"}]
  },
  "segmesh": {
    "edge": {"serverCertFile": "edge.pem", "serverKeyFile": "edge.key", "exchangeUrls": ["https://exchange.lab.test"]}
  }
}`

// TestSplitProcessesEncryptOnlyTheirSecrets: in split mode each process
// encrypts, at its start, only the .plaintext secrets of the roles it runs,
// with its own key (SEGMESH_CONFIG_KEY from its own Kubernetes Secret). An
// edge process starting first on a shared config.json used to encrypt the
// service account's password too, with the edge's key: it handled a secret
// it never uses, and the ticket process, holding another key, could then
// not decrypt its own password and did not start.
func TestSplitProcessesEncryptOnlyTheirSecrets(t *testing.T) {
	t.Setenv(config.KeyFileEnv, "")
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(splitConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	read := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	t.Setenv(config.KeyEnv, newKey(t)) // the edge's key
	if _, _, err := LoadForRun(path, []string{"edge"}, log); err != nil {
		t.Fatalf("edge process: %v", err)
	}
	if f := read(); strings.Contains(f, "Edge-S3cret") || !strings.Contains(f, `"Passw0rd!.plaintext"`) {
		t.Fatalf("after the edge process: its passcode must be encrypted and the ticket role's password left alone:\n%s", f)
	}

	t.Setenv(config.KeyEnv, newKey(t)) // the ticket process's key
	c, _, err := LoadForRun(path, []string{"ticket"}, log)
	if err != nil {
		t.Fatalf("ticket process: %v", err)
	}
	if got := c.KCD.ServiceAccountPassword.Reveal(); got != "Passw0rd!" {
		t.Fatalf("ticket process's password %q", got)
	}
	if f := read(); strings.Contains(f, "Passw0rd!") {
		t.Fatalf("after the ticket process the password is still in clear:\n%s", f)
	}
}

// newKey returns a fresh secrets key as SEGMESH_CONFIG_KEY holds it.
func newKey(tb testing.TB) string {
	tb.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		tb.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}
