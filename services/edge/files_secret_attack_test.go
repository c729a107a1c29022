package edge

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/secret"
)

// TestAttackEdgeFileRefusalsHoldNoSecret: each file the edge reads at its
// start, at a reload and in `config check` named, by mistake or on
// purpose, as a file holding a secret: the edge's PEM private key, an env
// file with the secrets key and a password, and a PFX whose passcode is
// wrong. The refusal goes to the log, `config check`'s output and, on a
// refused reload, /status and /readyz: it must name the setting and the
// file, never quote the file's bytes or the passcode. Attacker review
// rvpath, session 8: held on main.
func TestAttackEdgeFileRefusalsHoldNoSecret(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := testpki.NewCA(t, "Server CA").Server(t, []string{"127.0.0.1"}).WriteFiles(t, dir, "edge")
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(dir, "segmesh.env")
	const envSecret, passcode = "c2VjcmV0LWtleS1vZi1zZWdtZXNoLTMyLWJ5dGVzISE=", "PfxPasscode-7Q2"
	if err := os.WriteFile(envFile, []byte("SEGMESH_CONFIG_KEY="+envSecret+"\nLDAP_BIND_PASSWORD=Passw0rd-7Q2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Chunks of the key's base64 body, any of which in a message is a leak.
	var keyChunks []string
	for _, line := range strings.Split(string(keyPEM), "\n") {
		if len(line) >= 24 && !strings.HasPrefix(line, "-----") {
			keyChunks = append(keyChunks, line[:24])
		}
	}
	if len(keyChunks) == 0 {
		t.Fatal("no base64 line in the key's PEM")
	}
	secrets := append([]string{envSecret, "Passw0rd-7Q2", passcode}, keyChunks...)
	for _, s := range []struct {
		name, key string
		set       func(c *config.Config)
	}{
		{"the private key as the Exchange CA bundle", "segmesh.edge.exchangeCaFile", func(c *config.Config) { c.Segmesh.Edge.ExchangeCAFile = keyFile }},
		{"the env file as the Exchange CA bundle", "segmesh.edge.exchangeCaFile", func(c *config.Config) { c.Segmesh.Edge.ExchangeCAFile = envFile }},
		{"the private key as the certificate", "segmesh.edge.serverCertFile", func(c *config.Config) {
			c.Segmesh.Edge.ServerCertFile, c.Segmesh.Edge.ServerKeyFile = keyFile, keyFile
		}},
		{"the env file as the key", "segmesh.edge.serverKeyFile", func(c *config.Config) {
			c.Segmesh.Edge.ServerCertFile, c.Segmesh.Edge.ServerKeyFile = certFile, envFile
		}},
		{"the private key as the PFX, with a passcode", "segmesh.edge.serverPfxFile", func(c *config.Config) {
			c.Segmesh.Edge.ServerPFXFile, c.Segmesh.Edge.ServerPFXPasscode = keyFile, secret.New(passcode)
		}},
		{"the env file as the PFX, with a passcode", "segmesh.edge.serverPfxFile", func(c *config.Config) {
			c.Segmesh.Edge.ServerPFXFile, c.Segmesh.Edge.ServerPFXPasscode = envFile, secret.New(passcode)
		}},
	} {
		t.Run(s.name, func(t *testing.T) {
			c := config.Default()
			c.BaseDir = dir
			c.Segmesh.Edge.ExchangeURLs = []string{"https://mail.lab.test"}
			s.set(&c)
			var said []string
			refused := false
			for _, p := range Validate(&c) {
				said = append(said, fmt.Sprintf("%s %s %s %s %v", p.Key, p.Value, p.Message, p.Fix, p.Err))
				refused = refused || p.Severity == config.SeverityError
			}
			if !refused {
				t.Fatalf("Validate accepted %s", s.name)
			}
			var err error
			if s.key == "segmesh.edge.exchangeCaFile" {
				_, err = ExchangeTLS(c.Segmesh.Edge.ExchangeCAFile)
			} else {
				ec, _ := configFrom(&c)
				_, err = loadServerCertificate(ec, slog.New(slog.DiscardHandler), time.Now())
			}
			if err == nil {
				t.Fatalf("the start's read accepted %s", s.name)
			}
			said = append(said, err.Error())
			for _, text := range said {
				for _, sec := range secrets {
					if strings.Contains(text, sec) {
						t.Fatalf("a refusal quotes a secret (%.12s...): %s", sec, text)
					}
				}
			}
		})
	}
}
