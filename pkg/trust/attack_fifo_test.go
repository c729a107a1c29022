package trust

import (
	"path/filepath"
	"testing"

	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// TestAttackTrustStoreNotRegular (attacker review rvconf): every reload
// and `config check` run the edge's and the crl role's Validate, which read
// clientCertTrustStorePath here, and trust.Reloader polls it. A path
// naming a FIFO (no writer: a plain open blocks for ever), a link to
// /dev/zero or a directory must be refused, not block the reload or read
// without end. On main Validate blocked on the FIFO.
func TestAttackTrustStoreNotRegular(t *testing.T) {
	for _, k := range safefiletest.Kinds() {
		t.Run(string(k), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "ca.pem")
			unblock := safefiletest.Make(t, k, p)
			var ps []Problem
			safefiletest.Within(t, "Validate", unblock, func() { ps = Validate(Spec{TrustStorePath: p}) })
			refused := false
			for _, pr := range ps {
				refused = refused || (pr.Severity == SeverityError && pr.Key == KeyPath)
			}
			if !refused {
				t.Errorf("Validate(%s) = %+v; want a refusal of %s", p, ps, KeyPath)
			}
		})
	}
}
