package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
	"github.com/segmesh/segmesh/pkg/trust"
)

// TestAttackTrustedFilesOthersMayReplace: the files whose content the
// gateway trusts, besides the client certificate trust store
// (TestAttackTrustStoreOthersMayReplace): config.json (whoever writes it
// points the LDAP URL at their host and receives the bind password), a CA
// bundle read by CAPool (segmesh.edge.exchangeCaFile: pose as Exchange;
// segmesh.identity.ldapCaFile: pose as the directory) and the console
// chain. Each is refused, naming the setting or the file, what is wrong
// and the chmod that fixes it, when group or others may write it or a
// directory above it; and accepted world-readable, or in a sticky
// directory. On main every refusal row was accepted.
func TestAttackTrustedFilesOthersMayReplace(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes are not checked on Windows")
	}
	t.Setenv(KeyEnv, "")
	t.Setenv(KeyFileEnv, "")
	caPEM := testpki.NewCA(t, "Exchange CA").PEM()
	readers := []struct {
		name, key string
		content   []byte
		read      func(path string) error
	}{
		// The password .plaintext: one in clear makes a config.json others may
		// read a secret file (TestAttackClearSecretInReadableConfig).
		{"config.json", "", []byte(edit(t, base, map[string]any{"kcd/serviceAccountPassword": "Passw0rd!" + PlaintextSuffix})), func(p string) error { _, _, err := Load(p); return err }},
		{"exchangeCaFile", "segmesh.edge.exchangeCaFile", caPEM, func(p string) error {
			_, err := CAPool("segmesh.edge.exchangeCaFile", p, "name the CA bundle")
			return err
		}},
		{"console chain", trust.KeyConsoleChain, caPEM, func(p string) error {
			c := Default()
			c.BaseDir = filepath.Dir(p)
			c.ClientCertificateChain = p
			for _, q := range TrustProblems(&c) {
				if q.Severity == SeverityError {
					return &q
				}
			}
			return nil
		}},
	}
	for _, tc := range []struct {
		name              string
		file, dir, parent os.FileMode
		want              string // "" accepted
	}{
		{"0644 in 0755", 0o644, 0o755, 0o755, ""},
		{"0440 in 0750 (a Kubernetes volume with fsGroup)", 0o440, 0o750, 0o755, ""},
		{"in a sticky world-writable directory, ours", 0o644, 0o777 | os.ModeSticky, 0o755, ""},
		{"group may write it", 0o664, 0o755, 0o755, "has mode 0664"},
		{"others may write it", 0o666, 0o700, 0o755, "has mode 0666"},
		{"group may write its directory", 0o644, 0o775, 0o755, "has mode 0775"},
		{"others may write a directory above it", 0o644, 0o755, 0o777, "has mode 0777"},
	} {
		for _, r := range readers {
			t.Run(tc.name+"/"+r.name, func(t *testing.T) {
				name := "file.pem"
				if r.key == "" {
					name = "config.json"
				}
				p := safefiletest.Tree{File: tc.file, Dir: tc.dir, Parent: tc.parent}.Make(t, "segmesh", name, r.content)
				err := r.read(p)
				if tc.want == "" {
					if err != nil {
						t.Fatalf("%s = %v; want it accepted", r.name, err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "another local user could replace it") {
					t.Fatalf("%s = %v; want a refusal saying %q", r.name, err, tc.want)
				}
				if r.key == "" {
					if !strings.Contains(err.Error(), "chmod go-w") {
						t.Fatalf("Load = %v; want the chmod that fixes it", err)
					}
					return
				}
				var q *Problem
				if !errors.As(err, &q) || q.Key != r.key || !strings.Contains(q.Fix, "chmod go-w") {
					t.Fatalf("%s = %#v; want a Problem on %s with the chmod that fixes it", r.name, err, r.key)
				}
			})
		}
	}
}
