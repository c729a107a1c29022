package identity

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// TestAttackLDAPCAFileNotRegular: segmesh.identity.ldapCaFile named as a
// FIFO without a writer (a plain open blocks for ever), a link to
// /dev/zero (read without end), a directory or a 64 MiB file. Validate (so
// the start's checks, `config check` and every reload) refuses each at
// once naming the setting, and the mapper's own read at the start returns
// an error naming it. On main Validate did not read the file (check passed
// where the start then failed or hung) and newMapper's os.ReadFile blocked
// on the FIFO.
func TestAttackLDAPCAFileNotRegular(t *testing.T) {
	const key = "segmesh.identity.ldapCaFile"
	for _, kind := range append(safefiletest.Kinds(), safefiletest.Large) {
		t.Run(string(kind), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "ldap-ca.pem")
			unblock := safefiletest.Make(t, kind, p)
			c := fullConfig("ldaps://dc1.lab.test:636", password, func(c *config.Config) { c.Segmesh.Identity.LDAPCAFile = p })
			var ps []config.Problem
			safefiletest.Within(t, "Validate", unblock, func() { ps = Validate(c) })
			if !slices.ContainsFunc(ps, func(q config.Problem) bool { return q.Key == key && q.Severity == config.SeverityError }) {
				t.Fatalf("Validate = %+v; want a refusal of %s", ps, key)
			}
			var err error
			safefiletest.Within(t, "the mapper's read", unblock, func() { _, err = ConfigFrom(c).newMapper(BuildOptions{}) })
			if err == nil || !strings.Contains(err.Error(), key) {
				t.Errorf("newMapper = %v; want an error naming %s", err, key)
			}
		})
	}
}
