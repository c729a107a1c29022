package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/trust"
)

// TestTrustSpecReadsTheConsoleChainOnlyWithoutAStore: the one builder of the
// trust spec (edge, diagnose and config check use it) reads the console
// chain as SEG does, and names the key when it cannot.
func TestTrustSpecReadsTheConsoleChainOnlyWithoutAStore(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "chain.pem"), []byte("CHAIN"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, store, chain string
		wantChain          string
		wantKey            string // of the problem; "" for none
	}{
		{"console chain only", "", "chain.pem", "CHAIN", ""},
		{"local store wins", "ca.pem", "chain.pem", "", ""},
		{"console chain unreadable", "", "missing.pem", "", trust.KeyConsoleChain},
		{"unreadable chain ignored when a store is set", "ca.pem", "missing.pem", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			c.BaseDir = dir
			c.ClientCertTrustStorePath, c.ClientCertificateChain = tt.store, tt.chain
			spec, err := c.TrustSpec()
			var p *config.Problem
			switch {
			case tt.wantKey == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantKey != "" && (!errors.As(err, &p) || p.Key != tt.wantKey || !errors.Is(err, fs.ErrNotExist)):
				t.Fatalf("err = %v, want a problem on %s wrapping the read error", err, tt.wantKey)
			}
			if string(spec.ConsoleChainPEM) != tt.wantChain || err == nil && spec.TrustStorePath != tt.store {
				t.Errorf("spec = %+v", spec)
			}
			ps := config.TrustProblems(&c)
			if tt.wantKey != "" && (len(ps) != 1 || ps[0].Key != tt.wantKey) {
				t.Errorf("TrustProblems = %v, want the one problem on %s", ps, tt.wantKey)
			}
		})
	}
}
