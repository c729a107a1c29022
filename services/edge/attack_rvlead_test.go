package edge

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// TestAttackServerKeyFileTricks (rvlead, session 9, attack on af32374 and
// 52c961c): the edge's key and PFX named through a symbolic link to an
// exposed file or through a directory others write, a FIFO (must not
// hang), an oversized private file, a directory; the public certificate
// group- and world-readable beside a private key; a wrong PFX passcode and
// a key file that is not a key. Each verdict is readServerCertificate's,
// which the start, a reload (door_tls.go) and config check (fileProblems)
// share; no refusal carries key bytes or the passcode.
func TestAttackServerKeyFileTricks(t *testing.T) {
	ca := newCA(t, "Server CA")
	leaf := ca.issue(t, certOpts{cn: "edge.lab.test", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	const pass = "Pa55-SECRETcode"
	pfxData, err := pkcs12.Modern.Encode(leaf.PrivateKey, leaf.Leaf, []*x509.Certificate{ca.cert}, pass)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]})
	key := keyPEM(t, leaf)
	keyB64 := strings.Split(string(key), "\n")[1] // a line of the key's bytes
	private := func(t *testing.T) string {
		d := filepath.Join(t.TempDir(), "certs")
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		return d
	}
	put := func(t *testing.T, p string, b []byte, mode os.FileMode) string {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name        string
		make        func(t *testing.T, dir string) Config
		wantRefused bool
	}{
		{"certificate 0644, key 0600", func(t *testing.T, dir string) Config {
			return Config{ServerCertFile: put(t, filepath.Join(dir, "c.pem"), certPEM, 0o644), ServerKeyFile: put(t, filepath.Join(dir, "k.pem"), key, 0o600)}
		}, false},
		// Refused since session 10 (ikey): its group can put a certificate
		// for the same key from a CA of theirs (TestAttackServerCertFileReplaceable).
		{"certificate 0664 (group-writable), key 0600", func(t *testing.T, dir string) Config {
			return Config{ServerCertFile: put(t, filepath.Join(dir, "c.pem"), certPEM, 0o664), ServerKeyFile: put(t, filepath.Join(dir, "k.pem"), key, 0o600)}
		}, true},
		{"key: symlink in a private directory to a 0644 key", func(t *testing.T, dir string) Config {
			pub := put(t, filepath.Join(t.TempDir(), "k.pem"), key, 0o644)
			l := filepath.Join(dir, "k.pem")
			if err := os.Symlink(pub, l); err != nil {
				t.Fatal(err)
			}
			return Config{ServerCertFile: put(t, filepath.Join(dir, "c.pem"), certPEM, 0o644), ServerKeyFile: l}
		}, true},
		{"key: symlink to a 0600 key in a 0777 directory", func(t *testing.T, dir string) Config {
			open := filepath.Join(t.TempDir(), "open")
			if err := os.Mkdir(open, 0o700); err != nil {
				t.Fatal(err)
			}
			k := put(t, filepath.Join(open, "k.pem"), key, 0o600)
			if err := os.Chmod(open, 0o777); err != nil {
				t.Fatal(err)
			}
			l := filepath.Join(dir, "k.pem")
			if err := os.Symlink(k, l); err != nil {
				t.Fatal(err)
			}
			return Config{ServerCertFile: put(t, filepath.Join(dir, "c.pem"), certPEM, 0o644), ServerKeyFile: l}
		}, true},
		{"PFX: symlink to a 0644 PFX", func(t *testing.T, dir string) Config {
			pub := put(t, filepath.Join(t.TempDir(), "e.pfx"), pfxData, 0o644)
			l := filepath.Join(dir, "e.pfx")
			if err := os.Symlink(pub, l); err != nil {
				t.Fatal(err)
			}
			return Config{ServerPFXFile: l, ServerPFXPasscode: pass}
		}, true},
		{"key: a FIFO", func(t *testing.T, dir string) Config {
			p := filepath.Join(dir, "k.pem")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Skip(err)
			}
			return Config{ServerCertFile: put(t, filepath.Join(dir, "c.pem"), certPEM, 0o644), ServerKeyFile: p}
		}, true},
		{"PFX: a FIFO", func(t *testing.T, dir string) Config {
			p := filepath.Join(dir, "e.pfx")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Skip(err)
			}
			return Config{ServerPFXFile: p, ServerPFXPasscode: pass}
		}, true},
		{"key: oversized 0600 (over config.MaxPEMFile)", func(t *testing.T, dir string) Config {
			big := append(append([]byte{}, key...), []byte(strings.Repeat("#", 9<<20))...)
			return Config{ServerCertFile: put(t, filepath.Join(dir, "c.pem"), certPEM, 0o644), ServerKeyFile: put(t, filepath.Join(dir, "k.pem"), big, 0o600)}
		}, true},
		{"key: a directory", func(t *testing.T, dir string) Config {
			p := filepath.Join(dir, "k.pem")
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			return Config{ServerCertFile: put(t, filepath.Join(dir, "c.pem"), certPEM, 0o644), ServerKeyFile: p}
		}, true},
		{"PFX: wrong passcode", func(t *testing.T, dir string) Config {
			return Config{ServerPFXFile: put(t, filepath.Join(dir, "e.pfx"), pfxData, 0o600), ServerPFXPasscode: "wrong-" + pass}
		}, true},
		{"key: the key file is the certificate and the key mangled", func(t *testing.T, dir string) Config {
			mangled := []byte(strings.Replace(string(key), "PRIVATE KEY", "PRIVATE KEYX", -1))
			return Config{ServerCertFile: put(t, filepath.Join(dir, "c.pem"), certPEM, 0o644), ServerKeyFile: put(t, filepath.Join(dir, "k.pem"), mangled, 0o600)}
		}, true},
		{"key: PEM of the key put in the certificate file and the certificate in the key file", func(t *testing.T, dir string) Config {
			return Config{ServerCertFile: put(t, filepath.Join(dir, "c.pem"), key, 0o600), ServerKeyFile: put(t, filepath.Join(dir, "k.pem"), certPEM, 0o600)}
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.make(t, private(t))
			_, ok, err := readServerCertificate(&c)
			if !ok {
				t.Fatal("no certificate file named")
			}
			ps := fileProblems(&c)
			if !tc.wantRefused {
				if err != nil || len(ps) != 0 {
					t.Fatalf("refused: %v %+v", err, ps)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if len(ps) == 0 {
				t.Fatalf("config check (fileProblems) accepts what the start refuses: %v", err)
			}
			for _, s := range []string{err.Error(), ps[0].String(), ps[0].Message, ps[0].Value} {
				if strings.Contains(s, keyB64) || strings.Contains(s, "SECRETcode") || strings.Contains(s, "BEGIN") {
					t.Errorf("refusal carries key bytes or the passcode: %q", s)
				}
			}
		})
	}
}
