package edge

import (
	"context"
	"fmt"
	"strings"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/trust"
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
		if err := s.keepsTrust(next); err != nil {
			return nil, err
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

// keepsTrust refuses a save that leaves no client certificate trusted while
// the edge runs with KCD or Require Client Certificate on: both take a
// restart, so a save turning them off with the trust store emptied passes
// config.Load and the roles' checks, and would leave the edge refusing
// every device (no_trust), a state it refuses to start in (newTrust).
func (s *Service) keepsTrust(next *config.Config) error {
	if !s.cfg.RequireClientCert || len(config.SplitList(next.ClientCertTrustStorePath)) > 0 || strings.TrimSpace(next.ClientCertificateChain) != "" {
		return nil
	}
	return fmt.Errorf("edge: %s and %s are both empty, but this edge runs with KCD or Require Client Certificate on (kcd.enabled and requireClientCertificate take a restart): "+
		"every device would be refused; keep the issuing CAs in %s until the restart that turns them off, or restart segmesh to apply the whole save",
		trust.KeyPath, trust.KeyConsoleChain, trust.KeyPath)
}

// upstreamCount is the number of Exchange URLs in force.
func (s *Service) upstreamCount() int {
	if s.upstreams == nil {
		return len(s.cfg.Upstreams)
	}
	return len(s.upstreams.route.Load().urls)
}
