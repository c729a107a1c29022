package edge

import (
	"context"
	"crypto/x509"
	"strings"
	"sync"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// cdpLearner reports the distribution points of certificates whose issuer
// has no CRL to the crl role (segmesh.crl.useCertificateCdps), which fetches
// them, and holds the handshake until the CRL is in force or wait passes.
// The report is the crl role's Check, which adds the HTTP distribution
// points of a certificate a trusted CA signed to its sources.
type cdpLearner struct {
	client crlv1.RevocationServiceClient
	// wait bounds how long a handshake waits for the learnt CRL.
	wait time.Duration
	// every is how often one issuer is reported again while still unknown.
	every time.Duration

	mu sync.Mutex
	// reported is keyed by issuer and distribution points: certificates of
	// one issuer in another partition name other points.
	reported map[string]time.Time
}

func newCDPLearner(client crlv1.RevocationServiceClient, wait time.Duration) *cdpLearner {
	return &cdpLearner{client: client, wait: wait, every: time.Minute, reported: map[string]time.Time{}}
}

// learn reports c's distribution points (at most once per issuer and
// points a minute)
// and waits for a snapshot holding its issuer's CRL; it returns the
// generation and the verdict it ended with.
func (l *cdpLearner) learn(r *revocation, c *x509.Certificate) (uint64, crl.Decision) {
	k := crl.CertIssuerKey(c)
	ctx, cancel := context.WithTimeout(context.Background(), l.wait)
	defer cancel()
	if len(httpCDPs(c)) > 0 && l.due(k.String()+" "+strings.Join(httpCDPs(c), " "), r.now()) {
		if _, err := l.client.Check(ctx, &crlv1.CheckRequest{CertificateDer: c.Raw}); err != nil {
			r.log.Warn("certificate distribution points not reported to the crl role; the certificate is refused", "issuer", c.Issuer.String(), "err", err)
		} else {
			r.log.Info("certificate distribution points reported to the crl role", "issuer", c.Issuer.String(), "cdps", httpCDPs(c))
		}
	}
	for {
		changed := r.changes()
		gen := r.gen.Load()
		d := r.set.Load().Decide(c, r.now(), r.cfg.Policy)
		if d.Verdict != crl.Unknown || len(httpCDPs(c)) == 0 {
			return gen, d
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return gen, d
		}
	}
}

// due reports whether issuer and points k should be reported now, and
// records it.
func (l *cdpLearner) due(k string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.reported[k]; ok && now.Sub(t) < l.every {
		return false
	}
	if len(l.reported) > 1024 {
		clear(l.reported)
	}
	l.reported[k] = now
	return true
}

// httpCDPs returns the distribution points of c the crl role can fetch.
func httpCDPs(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.CRLDistributionPoints {
		if fetch.CheckURL(u) == nil {
			out = append(out, u)
		}
	}
	return out
}
