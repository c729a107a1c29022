//go:build lab

package edge_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
	"github.com/segmesh/segmesh/internal/testpki"
)

// TestLabServerCertificateRotation runs segmesh on the lab's config.json
// with the edge's certificate copied to files of its own, renews it in
// place (a new certificate from the lab's server CA, key and certificate
// written over the old files), and checks through real reloads that a new
// connection gets the renewed certificate while a keep-alive connection
// opened before keeps serving on the old one; then a key of another
// certificate is refused (/readyz says so, still 200) and the renewed
// certificate stays.
func TestLabServerCertificateRotation(t *testing.T) {
	lab := labenv.Up(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "seg.pem"), filepath.Join(dir, "seg.key")
	for src, dst := range map[string]string{lab.ServerCert: certFile, lab.ServerKey: keyFile} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sm := startSegmesh(t, lab, runOptions{config: func(cfg map[string]any) {
		e := section(section(cfg, "segmesh"), "edge")
		e["serverCertFile"], e["serverKeyFile"] = certFile, keyFile
		delete(e, "serverPfxFile")
		delete(e, "serverPfxPasscode")
	}})
	serial := func(c *http.Client) string {
		t.Helper()
		resp, body, err := do(t, c, http.MethodPost, easURL(sm.base, "Sync", "alice", "LABROT1"), []byte("<Sync/>"), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("Sync as alice: %v %v %s", resp, err, body)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	keepAlive := sm.client(t, "alice")
	old := serial(keepAlive)

	ca := testpki.LoadCA(t, lab.ServerCA, filepath.Join(filepath.Dir(lab.ServerCA), "server.key"))
	renewed := ca.Server(t, []string{"seg.lab.test", "localhost", "127.0.0.1", "::1"})
	if err := os.WriteFile(keyFile, renewed.KeyPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, testpki.PEM(renewed.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	want := renewed.Cert.SerialNumber.String()
	if !eventually(30*time.Second, func() bool { return serial(sm.client(t, "alice")) == want }) {
		t.Fatalf("a new connection still gets serial %s 30 s after the renewal, want %s\n%s", serial(sm.client(t, "alice")), want, sm.logs.String())
	}
	if got := serial(keepAlive); got != old {
		t.Errorf("the connection opened before the renewal: serial %s, want its own %s", got, old)
	}

	other := ca.Server(t, []string{"seg.lab.test"})
	if err := os.WriteFile(keyFile, other.KeyPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if !eventually(30*time.Second, func() bool { return strings.Contains(sm.logs.String(), "configuration reload refused") }) {
		t.Fatalf("a key of another certificate was not refused\n%s", sm.logs.String())
	}
	if got := serial(sm.client(t, "alice")); got != want {
		t.Fatalf("after the refused key: serial %s, want the renewed %s", got, want)
	}
}
