package refresh

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

// commit puts the outcome of an attempt for s in force. The disk is
// written here, at the moment a CRL is put in force, and under r.mu, so
// that it follows the order of the commits: a displaced CRL is kept on
// disk before its URL's record is replaced (a restart between the two
// finds it in one of them). r.mu is held.
func (r *Refresher) commit(ctx context.Context, s *source, cur *crl.Index, got fetched, newV fetch.Validators, err error, now time.Time) {
	if s.unsaved != nil && got.idx == nil && r.cfg.Store != nil {
		r.saveRecord(s, *s.unsaved) // the CRL in force, not written yet: try again
	}
	if err != nil {
		s.failures++
		s.lastErr = err
		wait := min(r.cfg.Backoff.Delay(s.failures, r.rnd()), r.cfg.Interval)
		s.next = now.Add(wait)
		if ctx.Err() != nil {
			return // cancelled (stopping, or a start deadline): no warning about the distribution point
		}
		attrs := []any{"url", s.url, "err", err, "failures", s.failures, "retry_in", wait.Round(time.Second)}
		if cur != nil {
			attrs = append(attrs, "in_force", cur.Meta().Issuer, "this_update", cur.Meta().ThisUpdate)
			r.log.Warn("crl refresh failed; keeping the last good CRL", attrs...)
		} else {
			r.log.Warn("crl refresh failed; no CRL of this distribution point in force", attrs...)
		}
		return
	}
	if s.failures > 0 {
		r.log.Info("crl distribution point recovered", "url", s.url, "after_failures", s.failures)
	}
	s.failures, s.lastErr = 0, nil
	s.checkedAt = now
	s.next = now.Add(r.cfg.Interval)
	s.validators = newV
	idx := got.idx
	if idx == nil {
		if s.saved {
			r.touch(s.url, newV, now)
		}
		return
	}
	if cur != nil && (cur.Key() != idx.Key() || cur.Meta().Partition != idx.Meta().Partition) {
		r.displace(s, cur, idx)
	}
	s.idx, s.saved, s.retiredKept, s.unsaved = idx, false, false, nil
	if r.cfg.Store != nil {
		r.saveRecord(s, store.Record{URL: s.url, DER: got.der, Validators: newV, FetchedAt: now})
	}
	m := idx.Meta()
	r.log.Info("crl updated", "url", s.url, "issuer", m.Issuer, "entries", idx.Len(),
		"crl_number", m.Number, "this_update", m.ThisUpdate, "next_update", m.NextUpdate)
}

// saveRecord writes rec, the CRL of s in force, to s's URL's record, once
// the displaced CRLs that only that record holds are kept (keepDisplaced).
// When that fails, rec stays in s.unsaved, and commit writes it again at
// each later attempt of s, whatever its outcome: before, a CRL not written
// was never written until its distribution point gave a newer one (days),
// so an admin who fixed the state directory could only restart, which put
// an older CRL in force (TestAttackSaveFailedThenFixed). r.mu is held.
func (r *Refresher) saveRecord(s *source, rec store.Record) {
	if !r.keepDisplaced(s.url) {
		r.log.Warn("crl not saved to disk: the CRL this distribution point gave before could not be kept on disk, so its record keeps that one; a restart while the distribution point is down puts that one in force again", "url", s.url)
		r.saveFailed(s, SavedRecord, errors.New("the CRL it gave before could not be kept on disk, so its record keeps that one"))
		s.unsaved = &rec
		return
	}
	if err := r.cfg.Store.Save(rec); err != nil {
		r.log.Warn("crl not saved to disk; a restart while the distribution point is down will lack it", "url", s.url, "err", err)
		r.saveFailed(s, SavedRecord, err)
		s.unsaved = &rec
		return
	}
	s.saved, s.saveErr, s.unsaved = true, nil, nil
	if s.forgotten() {
		r.keepSource(s) // a restart forgets this URL: keep its CRL when the newest
	}
}

// olderThanDisplaced refuses idx, fetched from url, when it is older than
// the displaced CRL kept in force of its issuer and partition (one at
// most, see displace): put in force it would add nothing while the process
// runs, and it is the sign of a replay. A CRL kept for a URL no longer
// listed or learnt from a certificate (retiredKept, and the floors found
// at the start) refuses nothing: it stays in force beside an older one,
// and refusing a mirror that lags would keep its URL, and the role,
// unready. r.mu is held.
func (r *Refresher) olderThanDisplaced(url string, idx *crl.Index) error {
	for _, o := range r.sources {
		if !o.displaced || o.retiredKept || o.idx == nil || o.idx.Key() != idx.Key() || o.idx.Meta().Partition != idx.Meta().Partition {
			continue
		}
		held := o.idx.Meta()
		if crl.Compare(idx.Meta(), held) >= 0 {
			return nil
		}
		return &crl.Error{URL: url, Kind: crl.KindOlder, Issuer: idx.Meta().Issuer,
			Err: fmt.Errorf("received number %v thisUpdate %s, older than number %v thisUpdate %s of the same partition kept in force from %s",
				idx.Meta().Number, idx.Meta().ThisUpdate.Format(time.RFC3339), held.Number, held.ThisUpdate.Format(time.RFC3339), held.Source)}
	}
	return nil
}
