package edge

import (
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
	"github.com/segmesh/segmesh/pkg/secret"
)

// TestAttackEdgeFilesNotRegular: the files the edge reads at its start and
// at a reload (its certificate and key or PFX, the Exchange CA bundle)
// named as a FIFO without a writer (a plain open blocks for ever), a link
// to /dev/zero (read without end), a directory or a 64 MiB file. Validate
// (so the start's checks, `config check` and every reload) refuses each
// at once naming the setting, and the start's own reads (ExchangeTLS,
// loadServerCertificate) return an error naming it. On main Validate did
// not read the Exchange CA bundle or the PFX at all (the start then
// failed, or hung, where check had passed), and it blocked on a FIFO as
// the certificate or key (fileMissing's os.Open).
func TestAttackEdgeFilesNotRegular(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := testpki.NewCA(t, "Server CA").Server(t, []string{"127.0.0.1"}).WriteFiles(t, dir, "edge")
	for _, s := range []struct {
		key string
		set func(c *config.Config, p string)
	}{
		{"segmesh.edge.exchangeCaFile", func(c *config.Config, p string) { c.Segmesh.Edge.ExchangeCAFile = p }},
		{"segmesh.edge.serverCertFile", func(c *config.Config, p string) {
			c.Segmesh.Edge.ServerCertFile, c.Segmesh.Edge.ServerKeyFile = p, keyFile
		}},
		{"segmesh.edge.serverKeyFile", func(c *config.Config, p string) {
			c.Segmesh.Edge.ServerCertFile, c.Segmesh.Edge.ServerKeyFile = certFile, p
		}},
		{"segmesh.edge.serverPfxFile", func(c *config.Config, p string) {
			c.Segmesh.Edge.ServerPFXFile, c.Segmesh.Edge.ServerPFXPasscode = p, secret.New("pass")
		}},
	} {
		for _, kind := range append(safefiletest.Kinds(), safefiletest.Large) {
			t.Run(s.key+"/"+string(kind), func(t *testing.T) {
				p := filepath.Join(t.TempDir(), "file")
				unblock := safefiletest.Make(t, kind, p)
				c := config.Default()
				c.BaseDir = dir
				c.Segmesh.Edge.ExchangeURLs = []string{"https://mail.lab.test"}
				s.set(&c, p)
				var ps []config.Problem
				safefiletest.Within(t, "Validate", unblock, func() { ps = Validate(&c) })
				if !slices.ContainsFunc(ps, func(q config.Problem) bool { return q.Key == s.key && q.Severity == config.SeverityError }) {
					t.Fatalf("Validate = %+v; want a refusal of %s", ps, s.key)
				}
				var err error
				safefiletest.Within(t, "the start's read", unblock, func() {
					if s.key == "segmesh.edge.exchangeCaFile" {
						_, err = ExchangeTLS(p)
					} else {
						ec, _ := configFrom(&c)
						_, err = loadServerCertificate(ec, slog.New(slog.DiscardHandler), time.Now())
					}
				})
				if err == nil || !strings.Contains(err.Error(), s.key) {
					t.Errorf("the start's read = %v; want an error naming %s", err, s.key)
				}
			})
		}
	}
}
