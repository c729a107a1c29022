package edge

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// TestAttackReloadEmptiesTheTrustStore: a save that empties the client
// certificate trust store (clientCertTrustStorePath and
// clientCertificateChain both empty, live settings) passes config.Load
// when it also turns KCD and Require Client Certificate off, settings that
// take a restart; the edge keeps them on until then. It must not apply the
// empty trust store with them (every device refused as no_trust, a state
// the edge refuses to start in): the reload is refused, naming the
// settings, and devices keep being served. Failed on main: PrepareConfig
// accepted both saves and every device was refused (tls: bad certificate).
func TestAttackReloadEmptiesTheTrustStore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*config.Config)
	}{
		{"trust emptied alone", func(c *config.Config) {}},
		{"trust emptied with KCD and Require Client Certificate turned off", func(c *config.Config) {
			c.KCD.Enabled, c.RequireClientCertificate = false, false
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil, options{})
			cfg := *h.cfg
			cfg.ClientCertTrustStorePath, cfg.ClientCertificateChain = "", ""
			tc.mutate(&cfg)
			commit, err := h.edge.PrepareConfig(context.Background(), &cfg)
			if err == nil {
				commit()
				t.Errorf("PrepareConfig accepted an empty trust store while the edge runs with KCD and Require Client Certificate on")
			} else if !strings.Contains(err.Error(), "clientCertTrustStorePath") || !strings.Contains(err.Error(), "restart") {
				t.Errorf("the refusal does not name the setting and the restart: %v", err)
			}
			cert := h.ca.issue(t, certOpts{cn: "alice"})
			if resp, body := get(t, h.client(&cert, false), h.url(syncPath), nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("a device after the save: %d %s", resp.StatusCode, body)
			}
		})
	}
}
