package edge

import (
	"slices"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
)

// TestNeeds: the roles the edge calls follow the settings its Start
// branches on: the crl role with revocation honoured, identity and ticket
// with KCD on, none for a plain TLS proxy.
func TestNeeds(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		kcd, requireCert, revo bool
		want                   []string
	}{
		{"a plain TLS proxy", false, false, false, nil},
		{"KCD", true, false, false, []string{role.Identity, role.Ticket}},
		{"KCD and revocation", true, false, true, []string{role.CRL, role.Identity, role.Ticket}},
		{"client certificates and revocation", false, true, true, []string{role.CRL}},
		{"revocation not honoured without client certificates", false, false, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			c.KCD.Enabled, c.RequireClientCertificate, c.Gateway.RevocationEnabled = tc.kcd, tc.requireCert, tc.revo
			cfg, _ := configFrom(&c)
			if got := Needs(&c); !slices.Equal(got, tc.want) {
				t.Fatalf("Needs = %v, want %v", got, tc.want)
			}
			if cfg.KCD != slices.Contains(tc.want, role.Ticket) || cfg.Revocation != slices.Contains(tc.want, role.CRL) {
				t.Errorf("Start would call KCD %v, revocation %v; Needs says %v", cfg.KCD, cfg.Revocation, tc.want)
			}
		})
	}
}
