package edge

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/trust"
)

// reloaderTrust verifies against pkg/trust's current Store: the Reloader
// swaps it atomically on file change or SIGHUP, and open connections stay up.
type reloaderTrust struct {
	r *trust.Reloader
}

// verifyClient verifies chain for client authentication with the current
// Store; the error is a *trust.VerifyError naming the reason.
func (t reloaderTrust) verifyClient(chain []*x509.Certificate, now time.Time) (verifiedChain, error) {
	st := t.r.Store()
	chains, err := trust.VerifyClientChain(st, chain, now)
	if err != nil {
		return verifiedChain{}, err
	}
	return verifiedChain{notAfter: earliestNotAfter(chains[0]), store: st}, nil
}

// current returns the Store in use.
func (t reloaderTrust) current() *trust.Store { return t.r.Store() }

// acceptableCAs returns the current Store's CAs, whose names the TLS
// CertificateRequest lists so a device can pick the right certificate.
func (t reloaderTrust) acceptableCAs() *x509.CertPool { return t.r.Store().Pool() }

// newTrust loads the trust store (a broken one stops the start) and returns
// the Reloader the edge polls.
func newTrust(c *config.Config, log *slog.Logger, now func() time.Time) (*trust.Reloader, error) {
	spec, err := c.TrustSpec()
	if err != nil {
		return nil, err
	}
	r, err := trust.NewReloader(trust.ReloaderOptions{Spec: spec, Logger: log, Now: now})
	if err != nil {
		return nil, fmt.Errorf("edge: load client certificate trust store: %w", err)
	}
	if r.Store().Empty() && (c.RequireClientCertificate || c.KCD.Enabled) {
		return nil, fmt.Errorf("edge: no client certificate is trusted but KCD or Require Client Certificate is on; set %s or %s", trust.KeyPath, trust.KeyConsoleChain)
	}
	return r, nil
}
