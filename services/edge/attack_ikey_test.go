package edge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
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
			c := Config{ServerCertFile: safefiletest.Tree{File: tc.mode, Dir: 0o755}.Make(t, "certs", "edge.pem", tc.content)}
			c.ServerKeyFile = writeFile(t, filepath.Dir(c.ServerCertFile), "edge.key", srv.KeyPEM(t))
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
	c := Config{ExchangeCAFile: safefiletest.Tree{File: 0o644, Dir: 0o755}.Make(t, "certs", "exchange-ca.pem", append(ca.PEM(), ca.KeyPEM(t)...))}
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

// TestAttackServerCertFileReplaceable: serverCertFile was read only
// safely, never checked for who may write it. Whoever can (a 0666 file, or
// one in a directory others may write) cannot make a certificate for a key
// of theirs load (the key would not match), but can make one for the
// edge's own public key, which is in the certificate, signed by a CA of
// theirs: tls.X509KeyPair checks only that the keys match, so on main the
// edge loaded it at the next start or reload and served it (ikey, session
// 10: the replaced file loaded, issuer "Attacker CA"). Every device then
// refuses the edge (a denial of service), and the edge's certificate
// expiry on /status and its metric describe the attacker's. It is refused
// as every other file the gateway trusts (safefile.CheckReplaceable).
func TestAttackServerCertFileReplaceable(t *testing.T) {
	srv := testpki.NewCA(t, "Server CA").Server(t, []string{"edge.lab.test"})
	swapped := attackerCertFor(t, srv)
	for _, tc := range []struct {
		name          string
		mode, dirMode os.FileMode
		want          string // "" accepted; else in the refusal
	}{
		{"0644 in 0755", 0o644, 0o755, ""},
		{"others may write it (0646)", 0o646, 0o755, "has mode 0646"},
		{"group may write it (0664)", 0o664, 0o755, "has mode 0664"},
		{"in a directory others may write (0777)", 0o644, 0o777, "has mode 0777"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The key in a directory of its own, which passes.
			c := Config{ServerCertFile: safefiletest.Tree{File: tc.mode, Dir: tc.dirMode}.Make(t, "certs", "edge.pem", srv.PEM()), ServerKeyFile: writeFile(t, t.TempDir(), "edge.key", srv.KeyPEM(t))}
			if tc.want != "" {
				// What a user who may write it does.
				if err := os.WriteFile(c.ServerCertFile, swapped, 0); err != nil {
					t.Fatal(err)
				}
			}
			cert, _, err := readServerCertificate(&c)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("a certificate file others may write was accepted, and the edge serves one issued by %q", cert.Leaf.Issuer.CommonName)
			}
			for _, w := range []string{"segmesh.edge.serverCertFile", "another local user could replace it", tc.want, "chmod go-w"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q does not say %q", err, w)
				}
			}
		})
	}
}
