package refresh

import (
	"errors"
	"slices"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
)

// Reconfigure prepares a change of the configured distribution points and
// the refresh interval (a reload of remote.crl.distribution.http.uris and
// remote.crl.fetch.interval.in.minutes) and returns the commit that puts it
// in force. A URL that cannot be fetched (not http or https) is refused
// here and nothing changes. The commit cannot fail; after it:
//
//   - a new URL is fetched at once (the timer is woken). Its CRL never rolls
//     an issuer back: the snapshot keeps, per issuer, the newest CRL of any
//     source, so an older copy served at the new URL does not replace the
//     one in force;
//   - a removed URL is no longer fetched, but the last CRL it gave stays in
//     force ("retired") until a configured distribution point gives a CRL
//     of the same issuer at least as new. Dropping it at once would make
//     that issuer unknown, and an unknown issuer's certificates are
//     accepted (segmesh.crl.useCertificateCdps off, SEG's behaviour): every
//     certificate it revoked would quietly be valid again. A retired CRL
//     past its nextUpdate is stale like any other (refused under
//     failClosedOnStale). A retired CRL that is the newest of its issuer
//     and partition, when no configured URL's record on disk holds one at
//     least as new, is kept on disk (kept/, keepRetired), so a restart puts
//     it in force again: forgetting it would let an older CRL of its
//     partition held at a configured URL (a lagging mirror, or a replay)
//     un-revoke what it lists. Other retired CRLs are forgotten at a
//     restart. To stop checking an issuer's certificates at all, take its
//     CA out of the trust store; to drop a kept retired CRL, remove its
//     file (SourceStatus.KeptFile) and restart;
//   - with segmesh.crl.useCertificateCdps (Config.DeriveFromCAs) a removed
//     URL that gave a CRL is kept as one learnt from certificates, still
//     fetched: certificates of its issuer may name it, and while the
//     retired CRL kept the issuer known nothing would have learnt it again,
//     so a certificate revoked after the reload stayed valid until a
//     restart;
//   - a removed URL that never gave a CRL goes, and so leaves readiness;
//   - a URL learnt from certificates stays learnt; listed, it becomes a
//     configured one;
//   - the new interval applies from each URL's next attempt, brought forward
//     when the new interval ends sooner.
func (r *Refresher) Reconfigure(urls []string, interval time.Duration) (commit func(), err error) {
	var errs []error
	var want []string
	for _, u := range urls {
		if err := fetch.CheckURL(u); err != nil {
			errs = append(errs, err)
			continue
		}
		if !slices.Contains(want, u) {
			want = append(want, u)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	return func() {
		r.mu.Lock()
		now := r.clock.Now()
		r.cfg.Interval = interval
		kept := r.sources[:0:0]
		for _, s := range r.sources {
			listed := slices.Contains(want, s.url)
			switch {
			case s.displaced:
				// Kept until superseded, whatever the list says.
			case listed:
				if s.retired {
					s.retired, s.retiredKept, s.next = false, false, time.Time{}
				}
				if s.unlisted || s.learnt {
					s.unlisted, s.learnt, s.retiredKept = false, false, false
				}
				s.derived = false
			case s.derived:
			case s.idx == nil:
				continue // never gave a CRL: nothing to keep in force
			case r.cfg.DeriveFromCAs:
				// Certificates may name it, and their issuer stays known
				// through its CRL, so nothing would teach it again: keep
				// fetching it as a URL learnt from certificates. A restart
				// forgets those, so keepRetired keeps its CRL on disk.
				s.derived, s.unlisted = true, true
			default:
				s.retired = true
			}
			if !s.retired && s.next.After(now.Add(interval)) {
				s.next = now.Add(interval)
			}
			kept = append(kept, s)
		}
		for _, u := range want {
			if !slices.ContainsFunc(kept, func(s *source) bool { return s.fetches(u) }) {
				kept = append(kept, &source{url: u})
			}
		}
		r.sources = kept
		r.keepRetired()
		r.mu.Unlock()
		r.log.Info("crl distribution points changed", "urls", want, "interval", interval)
		r.publish(false)
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}, nil
}

// Interval returns the refresh interval in force.
func (r *Refresher) Interval() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg.Interval
}

// dropSuperseded removes the retired sources whose issuer and partition a
// configured source now covers with a CRL at least as new. r.mu is held.
func (r *Refresher) dropSuperseded() {
	r.sources = slices.DeleteFunc(r.sources, func(s *source) bool {
		if !s.retired {
			return false
		}
		return slices.ContainsFunc(r.sources, func(o *source) bool {
			return !o.retired && o.idx != nil && s.idx != nil && o.idx.Key() == s.idx.Key() &&
				o.idx.Meta().Partition == s.idx.Meta().Partition && crl.Compare(o.idx.Meta(), s.idx.Meta()) >= 0
		})
	})
}

// fetches reports whether s is the source that fetches url: a displaced
// source keeps the URL it came from, but is never fetched, so it does not
// stand for that URL when a reload lists it or a certificate names it
// (else the URL would never be fetched again). r.mu is held.
func (s *source) fetches(url string) bool { return !s.displaced && s.url == url }

// active returns the sources that are fetched: all but the retired ones.
// r.mu is held.
func (r *Refresher) active() []*source {
	return slices.DeleteFunc(slices.Clone(r.sources), func(s *source) bool { return s.retired })
}
