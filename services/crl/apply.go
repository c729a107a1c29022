package crl

import (
	"context"
	"fmt"

	"github.com/segmesh/segmesh/pkg/config"
)

// liveKeys are the settings the crl role applies from a reloaded
// config.json (role.ConfigApplier): the distribution points, the refresh
// interval, and the trust store CRL signatures are checked against (read
// by the edge too, which applies it as well). The switches that weaken
// revocation when turned off, enable.cert.revocation.validation,
// segmesh.crl.failClosedOnStale and segmesh.crl.useCertificateCdps, take a
// restart, as do fail.hard.on.crl.download.failure.during.server.startup
// (a start-only rule) and segmesh.crl.stateDir.
var liveKeys = []string{
	config.KeyCRLURIs, config.KeyCRLFetchIntervalMinutes, "segmesh.crl.fetchIntervalSeconds",
	"clientCertTrustStorePath", "clientCertTrustStorePasscode", "clientCertificateChain",
}

// LiveKeys implements role.ConfigApplier.
func (s *Service) LiveKeys() []string { return liveKeys }

// PrepareConfig implements role.ConfigApplier. It checks the new
// distribution points and loads the trust store from the new paths; the
// commit puts both in force (refresh.Refresher.Reconfigure says what
// happens to a URL added or removed: a removed URL's last CRL stays in
// force until a configured one supersedes it, so a reload never makes a
// revoked certificate valid). With revocation off the role fetches nothing
// and a change is only checked.
func (s *Service) PrepareConfig(_ context.Context, next *config.Config) (func(), error) {
	cfg := ConfigFrom(next)
	// The revocation switches stay as the start set them.
	cfg.Enabled, cfg.FailHard, cfg.FailClosedOnStale = s.cfg.Enabled, s.cfg.FailHard, s.cfg.FailClosedOnStale
	cfg.UseCertificateCDPs, cfg.StateDir = s.cfg.UseCertificateCDPs, s.cfg.StateDir
	if err := config.ErrorOf(next.FilePath(), cfg.problems()); err != nil {
		return nil, fmt.Errorf("crl: %w", err)
	}
	if !cfg.Enabled {
		return func() {}, nil
	}
	commitURLs, err := s.refresher.Reconfigure(cfg.URLs, cfg.Interval)
	if err != nil {
		return nil, fmt.Errorf("crl: %s: %w (the distribution points in use stay)", config.KeyCRLURIs, err)
	}
	commitTrust := func() {}
	if r := s.reloader.Load(); r != nil && s.ownTrust {
		spec, err := cfg.trustSpec()
		if err != nil {
			return nil, fmt.Errorf("crl: %w", err)
		}
		if commitTrust, err = r.Prepare(spec); err != nil {
			return nil, fmt.Errorf("crl: reload the client certificate trust store (the previous one stays in use): %w", err)
		}
	}
	return func() {
		commitTrust()
		commitURLs()
	}, nil
}
