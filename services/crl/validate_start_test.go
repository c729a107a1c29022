package crl

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/trust"
)

// TestValidateRefusesTheTrustStoreStartRefuses: the crl role opens the
// client certificate trust store at Start (the CAs whose CRLs it accepts),
// so its Validate refuses what Start would, also in a process without the
// edge (`segmesh run --roles crl`, `config check --roles crl`), where the
// edge's Validate does not run. Before, Validate passed a missing store
// and a file holding no certificate, and Start stopped on them.
func TestValidateRefusesTheTrustStoreStartRefuses(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path string }{
		{"a missing trust store", filepath.Join(dir, "missing.pem")},
		{"a file holding no certificate", junk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			c.RequireClientCertificate, c.Gateway.RevocationEnabled = true, true
			c.Gateway.CRLURIs = []string{"http://pki.corp.example/ca.crl"}
			c.ClientCertTrustStorePath = tc.path
			s, err := New(role.Deps{Config: &c})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			startErr := s.Start(ctx)
			if startErr == nil {
				_ = s.Stop(ctx)
				t.Fatal("Start accepted the trust store")
			}
			ps := Validate(&c)
			if !slices.ContainsFunc(ps, func(p config.Problem) bool { return p.Severity == config.SeverityError && p.Key == trust.KeyPath }) {
				t.Fatalf("Validate = %v; want an error on %s (Start: %v)", ps, trust.KeyPath, startErr)
			}
		})
	}
}
