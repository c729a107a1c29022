package edge

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
)

// TestAttackServerCertReplacedBeforeReload (rvkey, review of 60e65d5): the
// edge started with a sound certificate; afterwards the admin loosens the
// file or its directory, and a local user writes a certificate for the
// edge's own public key issued by a CA of theirs (it loads with the key).
// The reload that the content's change starts (PrepareConfig), config
// check (Validate) and the next start (readServerCertificate) must all
// refuse it, and the certificate served stays the one loaded at the start.
// Held on main: the three read through one reader.
func TestAttackServerCertReplacedBeforeReload(t *testing.T) {
	srv := testpki.NewCA(t, "Server CA").Server(t, []string{"edge.lab.test"})
	swapped := attackerCertFor(t, srv)
	exchange := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(exchange.Close)
	for _, tc := range []struct {
		name   string
		loosen func(certFile string) error
		want   string
	}{
		{"the file made group-writable (0664)", func(p string) error { return os.Chmod(p, 0o664) }, "has mode 0664"},
		{"its directory made 0777", func(p string) error { return os.Chmod(filepath.Dir(p), 0o777) }, "has mode 0777"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			certs := filepath.Join(root, "certs")
			if err := os.Mkdir(certs, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(certs, 0o700) })
			c := config.Default()
			c.BaseDir = root
			c.Segmesh.Edge.Listen = "127.0.0.1:0"
			c.Segmesh.Edge.ServerCertFile = writeFile(t, certs, "edge.pem", srv.PEM())
			if err := os.Chmod(c.Segmesh.Edge.ServerCertFile, 0o644); err != nil {
				t.Fatal(err)
			}
			c.Segmesh.Edge.ServerKeyFile = writeFile(t, t.TempDir(), "edge.key", srv.KeyPEM(t))
			c.Segmesh.Edge.ExchangeURLs = []string{exchange.URL}
			svc, err := newService(role.Deps{Config: &c}, options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := svc.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = svc.Stop(context.Background()) })

			if err := tc.loosen(c.Segmesh.Edge.ServerCertFile); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(c.Segmesh.Edge.ServerCertFile, swapped, 0); err != nil { // what a user who may write it does
				t.Fatal(err)
			}
			commit, err := svc.PrepareConfig(ctx, &c)
			if err == nil {
				commit()
				t.Fatalf("the reload accepted the replaced certificate; the edge serves one issued by %q", svc.serverCert.p.Load().Leaf.Issuer.CommonName)
			}
			for _, w := range []string{"segmesh.edge.serverCertFile", tc.want, "in use stays"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("reload refusal %q does not say %q", err, w)
				}
			}
			if got := svc.serverCert.p.Load().Leaf.Issuer.CommonName; got != "Server CA" {
				t.Errorf("served certificate issued by %q after the refused reload; want the one loaded at the start", got)
			}
			ps := Validate(&c)
			if len(ps) == 0 || !strings.Contains(ps[0].String(), tc.want) {
				t.Errorf("config check: %v; want the same refusal", ps)
			}
			ec, _ := configFrom(&c)
			if _, _, err := readServerCertificate(ec); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("the next start's read: %v; want the same refusal", err)
			}
		})
	}
}

// attackerCertFor returns, in PEM, what a local user who may write the
// edge's certificate file writes there: a certificate for srv's own public
// key (shown in srv's certificate) issued by their "Attacker CA". It loads
// with srv's key (tls.X509KeyPair compares only the keys).
func attackerCertFor(t *testing.T, srv *testpki.Cert) []byte {
	t.Helper()
	attacker := testpki.NewCA(t, "Attacker CA")
	tmpl := *srv.Cert
	tmpl.AuthorityKeyId = nil
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, attacker.Cert, srv.Cert.PublicKey, attacker.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
