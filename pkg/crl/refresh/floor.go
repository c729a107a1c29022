package refresh

import (
	"cmp"
	"errors"
	"io/fs"
	"os"
	"slices"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

// loadFloors makes every CRL recorded on disk the floor ("never older")
// of its issuer and partition at the start, whatever URLs the
// configuration lists now: the records of distribution points the
// configuration no longer lists (edited while the process was down, so
// no reload retired them) or learnt from certificates in an earlier run
// are read too, re-verified. One newer than every CRL of its issuer and
// partition in force is put in force as a kept one (displaced, retired,
// retiredKept: never fetched) and copied to kept/, and its record
// removed, so that removing the kept file and restarting drops it; a
// superseded one's record is removed. Without this, a URL removed or
// replaced by a lagging mirror between two runs put an older CRL in
// force: what the newest listed was good again. A record whose CRL the
// trust store does not vouch for (its CA taken out, the way to drop a CA)
// is left on disk and not in force. Called once, after the configured
// URLs' records and the kept CRLs are loaded.
func (r *Refresher) loadFloors() {
	if r.cfg.Store == nil {
		return
	}
	r.mu.Lock()
	var urls []string
	for _, s := range r.sources {
		if !s.displaced {
			urls = append(urls, s.url)
		}
	}
	r.mu.Unlock()
	recs, err := r.cfg.Store.Orphans(urls)
	if err != nil {
		r.log.Warn("crl records of distribution points no longer configured partly unreadable; ignoring those", "dir", r.cfg.Store.Dir(), "err", err)
	}
	for _, rec := range recs {
		url := cmp.Or(rec.URL, rec.File)
		idx, err := r.accept(rec.DER, url, rec.FetchedAt)
		if err != nil {
			r.log.Warn("crl record of a distribution point no longer configured rejected; left on disk, not in force", "url", url, "file", rec.File, "err", err)
			continue
		}
		r.mu.Lock()
		r.floor(rec, url, idx)
		r.mu.Unlock()
	}
}

// floor puts idx, from the record of a URL no longer configured, in
// force as the floor of its issuer and partition when it is newer than
// every CRL of theirs in force (see loadFloors). r.mu is held.
func (r *Refresher) floor(rec store.Orphan, url string, idx *crl.Index) {
	m := idx.Meta()
	p := pairOf(m)
	if rec.Kept {
		// Copied to kept/ when it was kept (keepSource): the kept copy is
		// the floor. Gone, it was dropped (the admin removed it, the way
		// the /readyz note gives, or a configured record superseded it):
		// this record must not bring it back (TestAttackDropKeptWhileItsRecordStays).
		// Still there (even damaged), the record stays a floor below.
		if _, err := os.Stat(r.cfg.Store.KeptPath(m.Key, m.Partition)); errors.Is(err, fs.ErrNotExist) {
			r.log.Info("crl record of a distribution point no longer configured not put in force: its CRL was kept on disk, and that kept copy was removed",
				"url", url, "file", rec.File, "issuer", m.Issuer, "partition", m.Partition, "crl_number", m.Number)
			if err := r.cfg.Store.RemoveOrphan(rec.File); err != nil {
				r.housekeepingFailed(HousekeepRemoveRecord, rec.File, err, "crl record of a dropped kept CRL not removed; the next start drops it again", "file", rec.File)
			}
			return
		}
	}
	if slices.ContainsFunc(r.sources, func(o *source) bool {
		return o.idx != nil && pairOf(o.idx.Meta()) == p && crl.Compare(o.idx.Meta(), m) >= 0
	}) {
		if err := r.cfg.Store.RemoveOrphan(rec.File); err != nil {
			r.housekeepingFailed(HousekeepRemoveRecord, rec.File, err, "crl record of a distribution point no longer configured superseded but not removed; the next start reads it again", "file", rec.File)
		}
		return
	}
	src := &source{url: url, retired: true, displaced: true, retiredKept: true, learnt: rec.Learnt, idx: idx, checkedAt: rec.FetchedAt, saved: true}
	if _, has := r.kept[p]; has || len(r.kept) < r.cfg.MaxKept {
		rec.Retired, rec.Learnt = true, false
		if err := r.cfg.Store.SaveKept(m.Key, m.Partition, rec.Record); err != nil {
			r.log.Warn("crl floor found at the start not copied to the kept CRLs; its record keeps it", "url", url, "file", rec.File, "err", err)
			r.saveFailed(src, SavedKept, err)
			src.heldByRecord(rec.File)
		} else {
			r.kept[p] = m
			if err := r.cfg.Store.RemoveOrphan(rec.File); err != nil {
				r.housekeepingFailed(HousekeepRemoveRecord, rec.File, err, "crl record of a distribution point no longer configured kept but not removed; the next start finds its kept copy as new and removes it", "file", rec.File)
			}
		}
	} else {
		src.heldByRecord(rec.File)
	}
	r.sources = slices.DeleteFunc(r.sources, func(o *source) bool { return o.displaced && o.idx != nil && pairOf(o.idx.Meta()) == p })
	r.sources = append(r.sources, src)
	r.log.Warn("crl of a distribution point no longer configured is the newest of its issuer and partition on disk: kept in force as its floor (a configuration edited while the process was down, or a URL learnt from a certificate before)",
		"url", url, "issuer", m.Issuer, "partition", m.Partition, "crl_number", m.Number, "this_update", m.ThisUpdate, "kept_file", cmp.Or(src.file, r.cfg.Store.KeptPath(m.Key, m.Partition)))
}

// heldByRecord marks s, a floor found at the start, as held only by its URL's
// record, file: that URL configured again by a reload, or named again by a
// certificate, is fetched afresh, and a CRL it gives, even an older one (a
// mirror that lags, accepted beside the floor), replaces that record. So
// the floor is a displaced CRL whose record holds it (keepDisplaced copies
// it to kept/, whatever the cap, before the record is replaced, and keeps
// the record when that fails); before, the older CRL was saved over it and
// the next restart had lost the floor (TestAttackFloorInARecordOverwritten).
// r.mu is held.
func (s *source) heldByRecord(file string) {
	s.file, s.saved, s.inRecord = file, false, true
}
