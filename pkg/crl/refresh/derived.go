package refresh

import (
	"crypto/x509"
	"slices"

	"github.com/segmesh/segmesh/pkg/crl/fetch"
)

// AddDerived adds distribution points learnt from certificates (their
// CRLDistributionPoints) and returns how many were new. Only http and https
// URLs are taken, at most MaxDerived in all; pass only certificates that
// verified against the trust store, since the URLs are fetched. New URLs are
// fetched at the next timer wake-up, which this call brings forward.
func (r *Refresher) AddDerived(urls ...string) int {
	r.mu.Lock()
	added := r.addDerivedLocked(urls, true)
	r.mu.Unlock()
	if added > 0 {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	return added
}

// addDerivedLocked adds urls as learnt from certificates; learnt tells a
// leaf's (AddDerived) from a trusted CA's own, which every start learns
// again. r.mu is held.
func (r *Refresher) addDerivedLocked(urls []string, learnt bool) int {
	derived := 0
	for _, s := range r.sources {
		if s.derived {
			derived++
		}
	}
	added := 0
	for _, u := range urls {
		if derived >= MaxDerived {
			if !r.limitLogged {
				r.limitLogged = true
				r.log.Warn("crl distribution points from certificates are no longer added: limit reached", "url", u, "limit", MaxDerived)
			}
			break
		}
		if fetch.CheckURL(u) != nil || slices.ContainsFunc(r.sources, func(s *source) bool { return s.fetches(u) }) {
			continue
		}
		r.sources = append(r.sources, &source{url: u, derived: true, learnt: learnt})
		derived++
		added++
	}
	return added
}

// CertificateCDPs returns the http and https CRL distribution points of certs.
func CertificateCDPs(certs ...*x509.Certificate) []string {
	var out []string
	for _, c := range certs {
		for _, u := range c.CRLDistributionPoints {
			if fetch.CheckURL(u) == nil && !slices.Contains(out, u) {
				out = append(out, u)
			}
		}
	}
	return out
}
