package edge

import (
	"context"
	"fmt"

	"github.com/segmesh/segmesh/pkg/config"
)

// liveKeys are the settings the edge applies from a reloaded config.json
// (role.ConfigApplier); segmesh run names every other changed edge setting
// as waiting for a restart.
var liveKeys = []string{
	"segmesh.edge.exchangeUrls",
	"clientCertTrustStorePath", "clientCertTrustStorePasscode", "clientCertificateChain",
}

// LiveKeys implements role.ConfigApplier.
func (s *Service) LiveKeys() []string { return liveKeys }

// ApplyConfig implements role.ConfigApplier: new requests go to the new
// Exchange URLs (the preferred one is the first again) while requests and
// held Pings already sent keep their connection, and the trust store is
// loaded from the new paths (a failed load keeps the old store). next has
// passed Validate.
func (s *Service) ApplyConfig(_ context.Context, next *config.Config) error {
	cfg, problems := configFrom(next)
	if err := config.ErrorOf(next.FilePath(), problems); err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	if s.reloader != nil {
		spec, err := next.TrustSpec()
		if err != nil {
			return fmt.Errorf("edge: trust store: %w", err)
		}
		if err := s.reloader.Update(spec); err != nil {
			return fmt.Errorf("edge: reload trust store (previous trust still in use): %w", err)
		}
	}
	if s.upstreams != nil {
		old := s.upstreams.route.Load()
		s.upstreams.route.Store(newRoute(cfg.Upstreams, old))
		s.log.Info("Exchange upstreams changed; new requests use them, requests and Pings under way keep theirs",
			"upstreams", len(cfg.Upstreams))
	}
	return nil
}

// upstreamCount is the number of Exchange URLs in force.
func (s *Service) upstreamCount() int {
	if s.upstreams == nil {
		return len(s.cfg.Upstreams)
	}
	return len(s.upstreams.route.Load().urls)
}
