package refresh

import (
	"errors"
	"fmt"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
)

// SourceStatus describes one distribution point.
type SourceStatus struct {
	// URL is the distribution point.
	URL string
	// Derived reports that the URL came from a certificate, not the config.
	Derived bool
	// Retired reports a URL a reload removed whose last CRL stays in force
	// until a configured one supersedes it; it is not fetched.
	Retired bool
	// Displaced reports a retired entry of a configured URL: the CRL it gave
	// before it gave one of another issuer or partition, kept in force and
	// not fetched until a CRL of its issuer and partition at least as new
	// supersedes it.
	Displaced bool
	// RetiredKept reports a retired CRL kept on disk (KeptFile) because it
	// is the newest of its issuer and partition and no configured URL's
	// record holds one at least as new: a restart puts it in force again
	// (Displaced is false for it, Retired true).
	RetiredKept bool
	// LearntKept reports a CRL of a distribution point learnt from a
	// certificate (useCertificateCdps) kept on disk (KeptFile) because it
	// is the newest of its issuer and partition: a restart, which forgets
	// such URLs, puts it in force again (Derived before a restart, Retired
	// after).
	LearntKept bool
	// KeptFile is the file that keeps a displaced or retired CRL on disk,
	// so that a restart puts it in force again; empty if none (no store,
	// or not written).
	KeptFile string
	// Partition is the scope of the CRL in force (crl.Meta.Partition); ""
	// for a CRL of every certificate of its issuer.
	Partition string
	// Issuer is the issuer of the CRL in force from this URL; empty if none.
	Issuer string
	// Key is that issuer's key.
	Key crl.IssuerKey
	// Entries is the number of distinct revoked serials in force.
	Entries int
	// Number is the CRL number in force, decimal; empty if none or absent.
	Number string
	// ThisUpdate and NextUpdate are the CRL's; zero if none.
	ThisUpdate, NextUpdate time.Time
	// FetchedAt is when the CRL in force was downloaded; zero if loaded from
	// disk without a record of it.
	FetchedAt time.Time
	// CheckedAt is the last successful contact (download or 304).
	CheckedAt time.Time
	// Stale reports that NextUpdate has passed.
	Stale bool
	// Failures counts consecutive failed attempts.
	Failures int
	// LastError is the last failure; nil after a success.
	LastError error
	// NextAttempt is when the URL is fetched next.
	NextAttempt time.Time
	// SaveError is why the last write of this source's CRL to disk (its
	// URL's record, or its kept copy) failed; nil after a success. While
	// it is set, a restart may lack that CRL.
	SaveError error
}

// Status describes every distribution point, configured ones first.
func (r *Refresher) Status() []SourceStatus {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]SourceStatus, 0, len(r.sources))
	for _, s := range r.sources {
		st := SourceStatus{URL: s.url, Derived: s.derived, Retired: s.retired, Displaced: s.displaced && !s.retiredKept,
			RetiredKept: s.retiredKept && !s.learnt, LearntKept: s.retiredKept && s.learnt, CheckedAt: s.checkedAt,
			Failures: s.failures, LastError: s.lastErr, NextAttempt: s.next, SaveError: s.saveErr}
		if s.idx != nil {
			m := s.idx.Meta()
			st.Issuer, st.Key, st.Entries, st.Partition = m.Issuer, m.Key, s.idx.Len(), m.Partition
			st.ThisUpdate, st.NextUpdate, st.FetchedAt = m.ThisUpdate, m.NextUpdate, m.FetchedAt
			st.Stale = crl.StaleAt(m.NextUpdate, now)
			if m.Number != nil {
				st.Number = m.Number.String()
			}
			switch {
			case s.file != "":
				st.KeptFile = s.file
			case (s.displaced && s.saved || s.retiredKept) && r.cfg.Store != nil:
				st.KeptFile = r.cfg.Store.KeptPath(m.Key, m.Partition)
			}
		}
		out = append(out, st)
	}
	return out
}

// Ready returns nil when every configured URL has a CRL in force, else the
// reason naming the URLs without one.
func (r *Refresher) Ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return errors.New("crl: startup fetch not done")
	}
	var missing []string
	for _, s := range r.sources {
		if s.idx == nil && !s.derived {
			missing = append(missing, s.url)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("crl: no CRL in force for %v", missing)
	}
	return nil
}
