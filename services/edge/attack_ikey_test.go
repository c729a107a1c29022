package edge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
)

// TestAttackServerCertFileHoldsKey: serverCertFile is read as public, so a
// world-readable one passed, even when it also held the private key (a
// combined PEM, as `cat cert.pem key.pem` or certbot's and many admin
// machines' bundles make) and a separate 0600 serverKeyFile was named.
// Every local user then reads the key and poses as the gateway (ikey,
// session 10: accepted on main). A PEM private key in a file read as public
// is held to the key's rule (safefile.CheckPrivate), whichever key it is:
// the edge cannot know what else a key it does not use signs for, so a
// key of another certificate is refused too. A cert file without a key, or
// a combined one only its owner (and group) may read, passes.
func TestAttackServerCertFileHoldsKey(t *testing.T) {
	ca := testpki.NewCA(t, "Server CA")
	srv, other := ca.Server(t, []string{"edge.lab.test"}), ca.Server(t, []string{"other.lab.test"})
	for _, tc := range []struct {
		name    string
		content []byte
		mode    os.FileMode
		refused bool
	}{
		{"certificate only, 0644", srv.PEM(), 0o644, false},
		{"certificate and its key, 0600", append(srv.PEM(), srv.KeyPEM(t)...), 0o600, false},
		{"certificate and its key, 0640 (the group may read, as for a key)", append(srv.PEM(), srv.KeyPEM(t)...), 0o640, false},
		{"certificate and its key, 0644", append(srv.PEM(), srv.KeyPEM(t)...), 0o644, true},
		{"key first, then the certificate, 0644", append(srv.KeyPEM(t), srv.PEM()...), 0o644, true},
		{"certificate and another certificate's key, 0644", append(srv.PEM(), other.KeyPEM(t)...), 0o644, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "certs")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			c := Config{ServerCertFile: writeFile(t, dir, "edge.pem", tc.content), ServerKeyFile: writeFile(t, dir, "edge.key", srv.KeyPEM(t))}
			if err := os.Chmod(c.ServerCertFile, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, _, err := readServerCertificate(&c)
			ps := fileProblems(&c)
			if !tc.refused {
				if err != nil || len(ps) != 0 {
					t.Fatalf("refused: %v %v", err, ps)
				}
				return
			}
			if err == nil || len(ps) == 0 {
				t.Fatal("a private key every local user may read, in serverCertFile, was accepted")
			}
			for _, msg := range []string{err.Error(), ps[0].Key + " " + ps[0].Message + " " + ps[0].Fix} {
				for _, w := range []string{"segmesh.edge.serverCertFile", "private key", "chmod 600 " + c.ServerCertFile, "remove the private key"} {
					if !strings.Contains(msg, w) {
						t.Errorf("refusal %q does not say %q", msg, w)
					}
				}
				if strings.Contains(msg, "-----BEGIN") {
					t.Errorf("refusal carries key material: %q", msg)
				}
			}
		})
	}
}

// TestAttackExchangeCAFileHoldsKey: a CA bundle read as public with a
// private key in it (the CA's, left in by whoever made the bundle) that
// every local user may read: on main it was accepted; it is refused
// naming the setting and the fix.
func TestAttackExchangeCAFileHoldsKey(t *testing.T) {
	ca := testpki.NewCA(t, "Exchange CA")
	dir := filepath.Join(t.TempDir(), "certs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := Config{ExchangeCAFile: writeFile(t, dir, "exchange-ca.pem", append(ca.PEM(), ca.KeyPEM(t)...))}
	if err := os.Chmod(c.ExchangeCAFile, 0o644); err != nil {
		t.Fatal(err)
	}
	ps := fileProblems(&c)
	if len(ps) != 1 {
		t.Fatalf("problems = %v; want one refusal of exchangeCaFile", ps)
	}
	msg := ps[0].Key + " " + ps[0].Message + " " + ps[0].Fix
	for _, w := range []string{"segmesh.edge.exchangeCaFile", "holds a private key", "remove the private key from " + c.ExchangeCAFile} {
		if !strings.Contains(msg, w) {
			t.Errorf("refusal %q does not say %q", msg, w)
		}
	}
}
