package edge

import (
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"strings"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/segmesh/segmesh/pkg/config"
)

// The edge's settings from config.json (config.go): paths, errors, and
// where the server certificate comes from.

func TestConfigPaths(t *testing.T) {
	c := config.Default()
	c.Segmesh.Edge.ExchangeURLs = []string{"https://mail.lab.test/"}
	cfg, err := newConfig(&c)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Upstreams[0].Path != "" {
		t.Errorf("upstream path %q, want the trailing slash trimmed", cfg.Upstreams[0].Path)
	}
	tests := map[string]bool{
		"/Microsoft-Server-ActiveSync":    true,
		"/Microsoft-Server-ActiveSync/x":  true,
		"/MICROSOFT-SERVER-ACTIVESYNC":    true,
		"/Microsoft-Server-ActiveSync2":   false,
		"/EWS/Exchange.asmx":              true,
		"/EWS":                            false,
		"/autodiscover/autodiscover.xml":  true,
		"/owa/auth.owa":                   false,
		"/ecp/":                           false,
		"/../Microsoft-Server-ActiveSync": false,
		"/EWS/../owa/":                    false,
		"/EWS/./Exchange.asmx":            false,
		"/Microsoft-Server-ActiveSync/..": false,
		`/EWS/..\owa`:                     false,
	}
	for p, want := range tests {
		if got := cfg.allowedPath(p); got != want {
			t.Errorf("allowedPath(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"KCD without SPN", func(c *config.Config) { c.KCD.Enabled = true }, "kcd.targetSPN"},
		{"bad upstream", func(c *config.Config) { c.Segmesh.Edge.ExchangeURLs = []string{"mail.lab.test"} }, "exchangeUrls[0]"},
		{"relative path", func(c *config.Config) { c.Segmesh.Edge.Paths = []string{"EWS/"} }, "paths[0]"},
		{"no listen", func(c *config.Config) { c.Segmesh.Edge.Listen = "" }, "segmesh.edge.listen"},
		{"drain spread negative", func(c *config.Config) { c.Segmesh.Edge.DrainSpreadMillis = -1 }, "segmesh.edge.drainSpreadMillis"},
		{"drain spread over 5 s", func(c *config.Config) { c.Segmesh.Edge.DrainSpreadMillis = 5001 }, "segmesh.edge.drainSpreadMillis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.mutate(&c)
			if _, err := newConfig(&c); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestServerCertificateSources(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "Server CA")
	leaf := ca.issue(t, certOpts{cn: "edge.lab.test", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	pfxData, err := pkcs12.Modern.Encode(leaf.PrivateKey, leaf.Leaf, []*x509.Certificate{ca.cert}, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	pfxPath := writeFile(t, dir, "edge.pfx", pfxData)
	certPath := writeFile(t, dir, "edge.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]}))
	keyPath := writeFile(t, dir, "edge.key", keyPEM(t, leaf))
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	tests := []struct {
		name      string
		cfg       Config
		wantCN    string
		wantChain int
		wantErr   string
	}{
		{"PEM pair", Config{ServerCertFile: certPath, ServerKeyFile: keyPath}, "edge.lab.test", 1, ""},
		{"PFX with chain", Config{ServerPFXFile: pfxPath, ServerPFXPasscode: "s3cret"}, "edge.lab.test", 2, ""},
		{"PFX wrong passcode", Config{ServerPFXFile: pfxPath, ServerPFXPasscode: "nope"}, "", 0, "serverPfxPasscode"},
		{"self-signed", Config{}, "segmesh edge (self-signed)", 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadServerCertificate(&tt.cfg, log, time.Now())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "nope") {
					t.Fatalf("err = %v, want one naming %s without the passcode", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l, err := x509.ParseCertificate(c.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if l.Subject.CommonName != tt.wantCN || len(c.Certificate) != tt.wantChain {
				t.Fatalf("CN %q chain %d, want %q %d", l.Subject.CommonName, len(c.Certificate), tt.wantCN, tt.wantChain)
			}
		})
	}
	if !strings.Contains(logs.String(), "self-signed") {
		t.Fatal("no warning for the self-signed certificate")
	}
}
