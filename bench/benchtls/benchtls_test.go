package benchtls

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
)

func TestLoopbackHost(t *testing.T) {
	for hp, want := range map[string]bool{"127.0.0.29:8443": true, "[::1]:80": true, "10.0.0.1:80": false,
		"localhost:80": false, "127.0.0.1": false} {
		if got := LoopbackHost(hp); got != want {
			t.Errorf("LoopbackHost(%q) = %v", hp, got)
		}
	}
}

// TestServerConfig: the certificate and every CA file are loaded, client
// certificates are required; a missing or empty CA file is an error.
func TestServerConfig(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := testpki.NewCA(t, "Device CA 1"), testpki.NewCA(t, "Device CA 2")
	certFile, keyFile := ca1.Server(t, []string{"edge.lab.test"}).WriteFiles(t, dir, "server")
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cas := write("ca1.pem", ca1.PEM()) + ", " + write("ca2.pem", ca2.PEM())
	cfg, err := ServerConfig(certFile, keyFile, cas)
	if err != nil {
		t.Fatal(err)
	}
	want := x509.NewCertPool()
	want.AddCert(ca1.Cert)
	want.AddCert(ca2.Cert)
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert || len(cfg.Certificates) != 1 || !cfg.ClientCAs.Equal(want) {
		t.Errorf("config: client auth %v, %d certificates, both CAs %v", cfg.ClientAuth, len(cfg.Certificates), cfg.ClientCAs.Equal(want))
	}
	for name, cas := range map[string]string{"missing file": filepath.Join(dir, "none.pem"), "no PEM": write("empty.pem", []byte("x"))} {
		if _, err := ServerConfig(certFile, keyFile, cas); err == nil || !strings.Contains(err.Error(), "client CA") {
			t.Errorf("%s: err %v", name, err)
		}
	}
}
