package refresh

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/segmesh/segmesh/pkg/crl"
)

// pair names an issuer's partition: the scope of one CRL in force.
type pair struct {
	key       crl.IssuerKey
	partition string
}

func pairOf(m crl.Meta) pair { return pair{m.Key, m.Partition} }

// loadKept puts in force the displaced CRLs the store keeps (kept/, one
// per issuer and partition), re-verified, as displaced sources: without
// them a restart would forget the newest CRL of a partition whose
// distribution point went on to give another partition, and put in force
// an older one of that partition that another URL's record holds (a
// replay). Called once, before the URLs' records are loaded.
func (r *Refresher) loadKept() {
	if r.cfg.Store == nil {
		return
	}
	recs, err := r.cfg.Store.LoadKept()
	if err != nil {
		r.log.Warn("crl kept copies partly unreadable; ignoring those", "dir", r.cfg.Store.Dir(), "err", err)
	}
	for _, rec := range recs {
		url := cmp.Or(rec.URL, r.cfg.Store.Dir())
		idx, err := r.accept(rec.DER, url, rec.FetchedAt)
		if err != nil {
			r.log.Warn("crl kept copy rejected; ignoring it", "url", url, "err", err)
			continue
		}
		m := idx.Meta()
		r.mu.Lock()
		same := func(o *source) bool { return o.displaced && pairOf(o.idx.Meta()) == pairOf(m) }
		if i := slices.IndexFunc(r.sources, same); i < 0 || crl.Compare(m, r.sources[i].idx.Meta()) > 0 {
			r.sources = slices.DeleteFunc(r.sources, same)
			r.sources = append(r.sources, &source{url: url, retired: true, displaced: true, retiredKept: rec.Retired || rec.Learnt, learnt: rec.Learnt,
				idx: idx, checkedAt: rec.FetchedAt, saved: true})
			r.kept[pairOf(m)] = m
		}
		r.mu.Unlock()
		r.log.Info("crl kept in force loaded from disk: the newest of its issuer and partition, which its distribution point no longer gives (it gave another issuer's or partition's, or a reload removed it)",
			"url", url, "retired", rec.Retired, "issuer", m.Issuer, "partition", m.Partition, "this_update", m.ThisUpdate, "next_update", m.NextUpdate)
	}
}

// keepDisplaced copies to the store's kept CRLs each displaced CRL that
// only url's record holds, before that record is replaced (or that was
// never written there: its unsaved record), and reports
// whether none is left only there (if one is, the record must not be
// replaced: a restart would forget that CRL). r.mu is held.
func (r *Refresher) keepDisplaced(url string) bool {
	ok := true
	for _, o := range r.sources {
		if !o.displaced || o.saved || !o.inRecord && o.unsaved == nil || !r.heldIn(o, url) {
			continue
		}
		m := o.idx.Meta()
		if k, has := r.kept[pairOf(m)]; has && crl.Compare(k, m) >= 0 {
			o.saved, o.inRecord, o.file, o.unsaved = true, false, "", nil // the disk keeps it, or a newer one
			continue
		}
		rec, err := r.cfg.Store.Load(url)
		if o.unsaved != nil {
			// Never written to the record (saveRecord failed): kept from
			// memory, else a restart would lack it.
			rec, err = *o.unsaved, nil
		}
		if err == nil {
			rec.Retired = o.retiredKept // a floor found at the start (heldByRecord) stays described as one
			err = r.cfg.Store.SaveKept(m.Key, m.Partition, rec)
		}
		if err != nil {
			r.log.Warn("crl displaced from a distribution point not kept on disk; its record keeps it until it is", "url", url,
				"issuer", m.Issuer, "partition", m.Partition, "err", err)
			r.saveFailed(o, SavedKept, err)
			ok = false
			continue
		}
		r.kept[pairOf(m)] = m
		o.saved, o.inRecord, o.saveErr, o.file, o.unsaved = true, false, nil, "", nil
	}
	return ok
}

// heldIn reports whether o, a displaced source, is held by url's record:
// it came from url, or it is a floor found at the start in url's record
// file (heldByRecord). A floor's URL is read from its record's
// description, which a crash between the record's two writes (or a
// release that wrote the DER first) can have lost: the floor is then
// named by its file, and matching on the URL alone let url's next CRL,
// an older one from a mirror that lags, be saved over the floor's only
// copy (TestAttackFloorInARecordOverwritten, "description lost"). r.mu
// is held.
func (r *Refresher) heldIn(o *source, url string) bool {
	return o.url == url || o.file != "" && o.file == r.cfg.Store.RecordFile(url)
}

// keepRetired keeps on disk (keepSource) the CRL of each source a reload
// retired, or, with useCertificateCdps, left fetched as learnt from
// certificates (unlisted), or learnt from a certificate. Called by a
// reload's commit. r.mu is held.
func (r *Refresher) keepRetired() {
	if r.cfg.Store == nil {
		return
	}
	for _, s := range r.sources {
		if s.forgotten() && !s.retiredKept {
			r.keepSource(s)
		}
	}
}

// forgotten reports a source whose CRL a restart does not load from its
// URL's record: a URL a reload removed (retired, or unlisted), or one
// learnt from a certificate. r.mu is held.
func (s *source) forgotten() bool {
	return (s.retired || s.unlisted || s.learnt) && !s.displaced
}

// keepSource copies to the store's kept CRLs the CRL of s, a forgotten
// source whose URL's record holds it, when it is the newest of its issuer
// and partition in force and no configured distribution point's record
// on disk holds one at least as new: else a restart would forget it and
// put in force an older CRL of its partition that a configured URL's
// record holds (a lagging mirror, or a replay), un-revoking what only it
// lists. A CRL learnt from a certificate of a partition not kept yet is
// not copied once MaxKept CRLs are kept (its record stays the floor of a
// start, loadFloors). A failure is logged and counted, and the source,
// shown without a kept file, carries it (saveErr). Store is set; r.mu is
// held.
func (r *Refresher) keepSource(s *source) {
	if s.idx == nil || !s.saved && s.unsaved == nil {
		return
	}
	m := s.idx.Meta()
	p := pairOf(m)
	if slices.ContainsFunc(r.sources, func(o *source) bool {
		if o == s || o.idx == nil || pairOf(o.idx.Meta()) != p {
			return false
		}
		c := crl.Compare(o.idx.Meta(), m)
		return c > 0 || c == 0 && !o.retired && !o.derived && o.saved
	}) {
		r.notNeeded(s)
		return // a newer one is in force, or a configured record on disk holds one as new
	}
	k, has := r.kept[p]
	if has && crl.Compare(k, m) >= 0 {
		s.retiredKept = crl.Compare(k, m) == 0 // this very CRL is kept
		if s.retiredKept && s.unsaved == nil {
			r.markKept(s)
		}
		r.notNeeded(s)
		return
	}
	if !has && s.learnt && len(r.kept) >= r.cfg.MaxKept {
		if !r.keptFullLogged {
			r.keptFullLogged = true
			r.log.Warn("crl learnt from a certificate not kept on disk: the kept CRLs are at their limit; its distribution point's record keeps it, which a start reads as the floor of its partition",
				"url", s.url, "issuer", m.Issuer, "partition", m.Partition, "limit", r.cfg.MaxKept)
		}
		return
	}
	rec, err := r.cfg.Store.Load(s.url)
	fromRecord := s.unsaved == nil
	if !fromRecord {
		// Never written to its record (saveRecord failed): kept from
		// memory (TestAttackRetiredUnsavedThenFixed).
		rec, err = *s.unsaved, nil
	}
	if err == nil {
		rec.Retired, rec.Learnt = s.retired || s.unlisted, s.learnt
		err = r.cfg.Store.SaveKept(m.Key, m.Partition, rec)
	}
	if err != nil {
		r.log.Warn("crl of a distribution point a restart forgets (removed by a reload, or learnt from a certificate) not kept on disk; a restart forgets it", "url", s.url,
			"issuer", m.Issuer, "partition", m.Partition, "err", err)
		r.saveFailed(s, SavedKept, err)
		return
	}
	r.kept[p] = m
	for _, o := range r.sources {
		if o != s && !o.displaced && o.idx != nil && pairOf(o.idx.Meta()) == p {
			o.retiredKept = false // the file holds s's CRL now
		}
	}
	s.retiredKept, s.saveErr, s.unsaved = true, nil, nil
	if fromRecord {
		r.markKept(s) // else the record holds an older CRL, or none
	}
}

// notNeeded ends the failed write of s, a retired source, when its CRL
// needs no copy of its own on disk (one at least as new is kept, or in
// force from elsewhere): it is never fetched again, so nothing else would
// end its saveError, and /readyz, /status and SegmeshCRLNotSaved would
// tell the admin for ever not to restart. A source still fetched keeps
// trying to write its record. r.mu is held.
func (r *Refresher) notNeeded(s *source) {
	if s.retired {
		s.saveErr, s.unsaved = nil, nil
	}
}

// keepUnsaved tries again to keep on disk the CRL of each forgotten
// source whose last write failed: a retired one is never fetched again,
// so no attempt of its own writes it (saveRecord); before, its saveError
// stayed for ever and a restart lost it. Called by publish. r.mu is held.
func (r *Refresher) keepUnsaved() {
	for _, s := range r.sources {
		if s.forgotten() && !s.retiredKept && s.saveErr != nil {
			r.keepSource(s)
		}
	}
}

// markKept marks s's record as copied to the kept CRLs (store.SetKept),
// so that a start does not take that record for a floor once the kept
// copy is gone: removing the kept file and restarting, the way the /readyz
// note gives to drop it, brought it back from the record
// (TestAttackDropKeptWhileItsRecordStays). A failure leaves the record a
// floor (the CRL stays, the safe side); it is logged. r.mu is held.
func (r *Refresher) markKept(s *source) {
	if err := r.cfg.Store.SetKept(s.url, true); err != nil {
		r.housekeepingFailed(HousekeepMark, s.url, err, "crl record not marked as kept; a start takes it for a floor even once its kept copy is removed", "url", s.url)
	}
}

// saveFailed records that writing s's CRL (what: SavedRecord or
// SavedKept) failed with err, for /status, /readyz and the metric. r.mu
// is held.
func (r *Refresher) saveFailed(s *source, what string, err error) {
	s.saveErr = fmt.Errorf("%s not written: %w", what, err)
	if h := r.cfg.Hooks.OnSaveFailed; h != nil {
		h(s.url, what)
	}
}

// forgetKept removes from the store the kept CRLs that a configured
// distribution point's record now supersedes (a CRL of the same issuer and
// partition at least as new, on disk, and loaded at a restart) once no
// displaced source of theirs is left in force. r.mu is held.
func (r *Refresher) forgetKept() {
	for p, k := range r.kept {
		if slices.ContainsFunc(r.sources, func(o *source) bool { return o.displaced && o.idx != nil && pairOf(o.idx.Meta()) == p }) {
			continue
		}
		var holders []*source
		for _, o := range r.sources {
			if !o.retired && !o.derived && o.saved && o.idx != nil && pairOf(o.idx.Meta()) == p && crl.Compare(o.idx.Meta(), k) >= 0 {
				holders = append(holders, o)
			}
		}
		if len(holders) == 0 || !r.unmarkKept(holders) {
			continue
		}
		if err := r.cfg.Store.RemoveKept(p.key, p.partition); err != nil {
			r.housekeepingFailed(HousekeepRemoveKept, r.cfg.Store.KeptPath(p.key, p.partition), err, "crl kept copy superseded but not removed; a restart loads it beside the newer one",
				"issuer", k.Issuer, "partition", p.partition)
			continue
		}
		delete(r.kept, p)
		for _, o := range r.sources {
			if o.retiredKept && o.idx != nil && pairOf(o.idx.Meta()) == p {
				o.retiredKept = false // a learnt or unlisted source's file is gone
			}
		}
	}
}

// unmarkKept clears the kept mark (markKept) of the records of holders,
// the configured sources whose records supersede a kept CRL about to be
// removed, and reports whether it could: such a record was marked when its
// URL was retired or learnt and is listed again now, and a marked record
// whose kept copy is gone is taken for a dropped one at a start, so,
// orphaned later by a reload or an edit, it would no longer be a floor
// (TestAttackReplaySequencesEdited). r.mu is held.
func (r *Refresher) unmarkKept(holders []*source) bool {
	for _, o := range holders {
		if err := r.cfg.Store.SetKept(o.url, false); err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.housekeepingFailed(HousekeepMark, o.url, err, "crl record superseding a kept CRL not unmarked; the kept CRL stays on disk", "url", o.url)
			return false
		}
	}
	return true
}
