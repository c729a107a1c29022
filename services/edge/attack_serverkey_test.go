package edge

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// TestAttackServerKeyFileExposed: whoever reads the edge's private key (or
// its PFX, whose passcode is in config.json) poses as the gateway to every
// device and reads what they send, their Basic credentials included. A key
// or PFX other local users may read, or replace (group-writable, or in a
// directory they may write), was accepted by the start, a reload and
// `config check` (they share readServerCertificate; rvconf's left item 4,
// session 9). It is refused as the secrets key is (safefile.CheckPrivate);
// 0600 and a group-readable 0440 (a Kubernetes Secret with fsGroup) pass.
func TestAttackServerKeyFileExposed(t *testing.T) {
	ca := newCA(t, "Server CA")
	leaf := ca.issue(t, certOpts{cn: "edge.lab.test", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	pfxData, err := pkcs12.Modern.Encode(leaf.PrivateKey, leaf.Leaf, []*x509.Certificate{ca.cert}, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]})
	cases := []struct {
		name            string
		pfx             bool
		fileMode, dirMd os.FileMode
		wantRefused     bool
	}{
		{"PEM key 0600", false, 0o600, 0o700, false},
		{"PEM key 0440 (Secret with fsGroup)", false, 0o440, 0o750, false},
		{"PEM key world-readable 0644", false, 0o644, 0o755, true},
		{"PEM key group-writable 0620", false, 0o620, 0o755, true},
		{"PEM key 0600 in a 0777 directory", false, 0o600, 0o777, true},
		{"PFX 0600", true, 0o600, 0o700, false},
		{"PFX world-readable 0644", true, 0o644, 0o755, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tree := safefiletest.Tree{File: tc.fileMode, Dir: tc.dirMd}
			var c Config
			if tc.pfx {
				c = Config{ServerPFXFile: tree.Make(t, "certs", "edge.pfx", pfxData), ServerPFXPasscode: "s3cret"}
			} else {
				c = Config{ServerKeyFile: tree.Make(t, "certs", "edge.key", keyPEM(t, leaf))}
				c.ServerCertFile = writeFile(t, filepath.Dir(c.ServerKeyFile), "edge.pem", certPEM)
			}
			_, ok, err := readServerCertificate(&c)
			if !ok {
				t.Fatal("no certificate file named")
			}
			if !tc.wantRefused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("a key others may read or replace was accepted")
			}
			msg := err.Error()
			want := "segmesh.edge.serverKeyFile"
			if tc.pfx {
				want = "segmesh.edge.serverPfxFile"
			}
			for _, w := range []string{want, "read or replace", "chmod"} {
				if !strings.Contains(msg, w) {
					t.Errorf("refusal %q does not say %q", msg, w)
				}
			}
			if strings.Contains(msg, "PRIVATE KEY") || strings.Contains(msg, "s3cret") {
				t.Errorf("refusal carries key material or the passcode: %q", msg)
			}
		})
	}
}
