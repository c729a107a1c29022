package crl

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
	"github.com/segmesh/segmesh/pkg/trust"
)

// TestValidateChecksTheConsoleChain: with revocation checking on and no
// local trust store, the crl role loads the console chain at its start
// (CRLs are verified against it). Its own Validate, which a process
// running the crl role alone runs before any role starts (`segmesh run
// --roles crl`, `config check --roles crl`), refuses a chain it could not
// load, naming clientCertificateChain, as the edge's Validate does. On
// main crl's Validate read nothing: such a process refused the chain only
// at the role's start, and `config check` for the crl role alone passed it.
func TestValidateChecksTheConsoleChain(t *testing.T) {
	for _, tc := range []struct {
		name  string
		make  func(t *testing.T, p string)
		valid bool
	}{
		{"a PEM CA", func(t *testing.T, p string) {
			if err := os.WriteFile(p, testpki.NewCA(t, "Device CA").PEM(), 0o644); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"missing", func(*testing.T, string) {}, false},
		{"a directory", func(t *testing.T, p string) { safefiletest.Make(t, safefiletest.Dir, p) }, false},
		{"no certificate in it", func(t *testing.T, p string) {
			if err := os.WriteFile(p, []byte("not a certificate\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"group may write it", func(t *testing.T, p string) {
			if runtime.GOOS == "windows" {
				t.Skip("modes are not checked on Windows")
			}
			if err := os.WriteFile(p, testpki.NewCA(t, "Device CA").PEM(), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, 0o664); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "console-chain.pem")
			tc.make(t, p)
			c := reloaded([]string{"http://pki.corp.example/ca.crl"}, func(c *config.Config) {
				c.BaseDir = dir
				c.ClientCertificateChain = "console-chain.pem"
			})
			ps := Validate(c)
			refused := slices.ContainsFunc(ps, func(q config.Problem) bool {
				return q.Key == trust.KeyConsoleChain && q.Severity == config.SeverityError
			})
			if refused == tc.valid {
				t.Fatalf("Validate = %+v; want the console chain refused: %v", ps, !tc.valid)
			}
			// Off, the role reads no chain, and Validate does not either.
			c.Gateway.RevocationEnabled = false
			if ps := Validate(c); len(ps) != 0 {
				t.Errorf("Validate with revocation off = %+v; want nothing", ps)
			}
		})
	}
}
