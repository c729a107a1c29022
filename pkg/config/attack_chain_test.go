package config

import (
	"path/filepath"
	"testing"

	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
	"github.com/segmesh/segmesh/pkg/trust"
)

// TestAttackConsoleChainNotRegular (attacker review rvconf): the console
// chain (clientCertificateChain) is read by TrustProblems, the edge's
// Validate, on every reload and config check. A FIFO there (no writer: a
// plain open blocks for ever), a link to /dev/zero or a directory is
// refused at once. On main TrustProblems blocked on the FIFO (and
// os.ReadFile would read /dev/zero without end).
func TestAttackConsoleChainNotRegular(t *testing.T) {
	for _, k := range safefiletest.Kinds() {
		t.Run(string(k), func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "chain.pem")
			unblock := safefiletest.Make(t, k, p)
			c := Default()
			c.BaseDir = dir
			c.ClientCertificateChain = p
			var ps []Problem
			safefiletest.Within(t, "TrustProblems", unblock, func() { ps = TrustProblems(&c) })
			if len(ps) != 1 || ps[0].Key != trust.KeyConsoleChain || ps[0].Severity != SeverityError {
				t.Errorf("TrustProblems(%s) = %+v; want one refusal of %s", p, ps, trust.KeyConsoleChain)
			}
		})
	}
}
