package edge

import (
	"context"
	"fmt"

	"github.com/segmesh/segmesh/pkg/config"
)

// liveKeys are the settings the edge applies from a reloaded config.json
// (role.ConfigApplier); segmesh run names every other changed edge setting
// as waiting for a restart.
var liveKeys = append([]string{
	"segmesh.edge.exchangeUrls", "segmesh.identity.cacheTtlSeconds", "kcd.targetSPN",
	"clientCertTrustStorePath", "clientCertTrustStorePasscode", "clientCertificateChain",
}, append(serverCertKeys, ticketKeySettings...)...)

// LiveKeys implements role.ConfigApplier.
func (s *Service) LiveKeys() []string { return liveKeys }

// PrepareConfig implements role.ConfigApplier. It checks next's edge
// settings and loads the trust store, the server certificate and the
// session ticket keys from the new paths; the commit puts the store and the certificate in force (new
// handshakes get them), has new requests ask tickets for the new Exchange
// SPN and sends them to the new Exchange URLs (the preferred one is the
// first again) while requests and held Pings already sent keep their SPN
// and connection. next has passed Validate.
func (s *Service) PrepareConfig(_ context.Context, next *config.Config) (func(), error) {
	cfg, problems := configFrom(next)
	if err := config.ErrorOf(next.FilePath(), problems); err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	commitTrust := func() {}
	commitCert, err := s.prepareServerCert(cfg)
	if err != nil {
		return nil, err
	}
	commitTickets, err := s.prepareTicketKeys(cfg)
	if err != nil {
		return nil, err
	}
	if s.reloader != nil {
		spec, err := next.TrustSpec()
		if err != nil {
			return nil, fmt.Errorf("edge: trust store: %w", err)
		}
		if commitTrust, err = s.reloader.Prepare(spec); err != nil {
			return nil, fmt.Errorf("edge: reload trust store (previous trust still in use): %w", err)
		}
	}
	return func() {
		commitTrust()
		commitCert()
		commitTickets()
		if s.identity != nil {
			s.identity.setTTL(cfg.IdentityCacheTTL)
		}
		if cfg.TargetSPN != s.targetSPN() {
			s.spn.Store(&cfg.TargetSPN)
			s.log.Info("Exchange SPN changed; new requests ask tickets for it, requests under way keep theirs", "target_spn", cfg.TargetSPN)
		}
		if s.upstreams != nil {
			old := s.upstreams.route.Load()
			s.upstreams.route.Store(newRoute(cfg.Upstreams, old))
			if s.relay != nil {
				s.relay.retain(cfg.Upstreams)
			}
			s.log.Info("Exchange upstreams changed; new requests use them, requests and Pings under way keep theirs",
				"upstreams", len(cfg.Upstreams))
		}
	}, nil
}

// upstreamCount is the number of Exchange URLs in force.
func (s *Service) upstreamCount() int {
	if s.upstreams == nil {
		return len(s.cfg.Upstreams)
	}
	return len(s.upstreams.route.Load().urls)
}
