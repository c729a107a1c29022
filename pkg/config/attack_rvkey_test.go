package config

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
)

// TestAttackClearSecretInReadableConfig (rvkey, review of a61117f, whose
// rule is that a secret in a file read as public makes the file a secret
// one): config.json is read as public (CheckReplaceable only), yet it may
// hold a secret written in clear, which segmesh run never encrypts (only
// ".plaintext" values are). On main a world-readable config.json with the
// service account's password in clear was accepted by run, reload and
// config check with a warning that did not say others can read it: every
// local user reads the password, and with it asks the KDC for a ticket to
// Exchange for any user (KCD). It is an error now, naming the file's mode
// and the fix, whichever role the secret is for; without the secret's
// value. 0640 (group read, as for a key), ".plaintext" values (run
// encrypts them before it loads) and a private file pass as before.
func TestAttackClearSecretInReadableConfig(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes are not checked on Windows")
	}
	t.Setenv(KeyEnv, "")
	t.Setenv(KeyFileEnv, "")
	const password = "Zq9-clear-4711"
	for _, tc := range []struct {
		name    string
		value   string
		mode    os.FileMode
		roles   []string
		refused bool
	}{
		{"in clear, 0644", password, 0o644, nil, true},
		{"in clear, 0604", password, 0o604, nil, true},
		{"in clear, 0644, a process whose roles do not use it", password, 0o644, []string{"edge"}, true},
		{"held: in clear, 0640", password, 0o640, nil, false},
		{"held: in clear, 0600", password, 0o600, nil, false},
		{"held: .plaintext, 0644 (run encrypts it first)", password + PlaintextSuffix, 0o644, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "config.json")
			if err := os.WriteFile(p, []byte(edit(t, base, map[string]any{"kcd/serviceAccountPassword": tc.value})), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, report, err := LoadFor(p, tc.roles)
			if report == nil {
				t.Fatalf("LoadFor: %v (no report)", err)
			}
			var found *Problem
			for i, pr := range report.Problems {
				if pr.Key == "kcd.serviceAccountPassword" && pr.Severity == SeverityError && strings.Contains(pr.Message, "in clear") {
					found = &report.Problems[i]
				}
				for _, s := range []string{pr.Value, pr.Message, pr.Fix} {
					if strings.Contains(s, password) {
						t.Errorf("a problem shows the password: %q", s)
					}
				}
			}
			if !tc.refused {
				if found != nil {
					t.Fatalf("refused: %s", found.Message)
				}
				return
			}
			if found == nil || err == nil {
				t.Fatalf("LoadFor of a %#o config.json holding a password in clear: %v; want it refused", tc.mode, err)
			}
			if !strings.Contains(found.Message, fmt.Sprintf("has mode %04o", tc.mode)) || !strings.Contains(found.Message, "another local user could read it") || !strings.Contains(found.Fix, "chmod 600 "+p) || !strings.Contains(found.Fix, PlaintextSuffix) {
				t.Errorf("problem = %q (fix %q); want who may read it, chmod and the suffix", found.Message, found.Fix)
			}
		})
	}
}

// TestAttackDERKeyReadAsPublic (rvkey, review of a61117f): a private key in
// DER (no PEM armor for the key-inside rule to see), world-readable, named
// where a certificate or CA is read as public: the trust store (a .cer),
// a CA bundle (exchangeCaFile) and the console chain. None holds a
// certificate, so each is refused (not silently used without its CAs);
// held on main.
func TestAttackDERKeyReadAsPublic(t *testing.T) {
	ca := testpki.NewCA(t, "Leaked CA")
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.cer")
	if err := os.WriteFile(p, der, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CAPool("segmesh.edge.exchangeCaFile", p, "name the CA bundle"); err == nil {
		t.Error("CAPool accepted a DER key as the CA bundle")
	}
	for name, set := range map[string]func(*Config){
		"trust store":   func(c *Config) { c.ClientCertTrustStorePath = p },
		"console chain": func(c *Config) { c.ClientCertificateChain = p },
	} {
		c := Default()
		c.BaseDir = filepath.Dir(p)
		set(&c)
		refused := false
		for _, q := range TrustProblems(&c) {
			refused = refused || q.Severity == SeverityError
		}
		if !refused {
			t.Errorf("%s: a DER key was accepted", name)
		}
	}
}
