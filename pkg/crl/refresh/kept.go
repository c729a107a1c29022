package refresh

import (
	"cmp"
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
			r.sources = append(r.sources, &source{url: url, retired: true, displaced: true, idx: idx, checkedAt: rec.FetchedAt, saved: true})
			r.kept[pairOf(m)] = m
		}
		r.mu.Unlock()
		r.log.Info("crl kept in force loaded from disk: its distribution point gave a CRL of another issuer or partition after it",
			"url", url, "issuer", m.Issuer, "partition", m.Partition, "this_update", m.ThisUpdate, "next_update", m.NextUpdate)
	}
}

// keepDisplaced copies to the store's kept CRLs each displaced CRL that
// only url's record holds, before that record is replaced, and reports
// whether none is left only there (if one is, the record must not be
// replaced: a restart would forget that CRL). r.mu is held.
func (r *Refresher) keepDisplaced(url string) bool {
	ok := true
	for _, o := range r.sources {
		if !o.displaced || o.saved || !o.inRecord || o.url != url {
			continue
		}
		m := o.idx.Meta()
		if k, has := r.kept[pairOf(m)]; has && crl.Compare(k, m) >= 0 {
			o.saved, o.inRecord = true, false // the disk keeps it, or a newer one
			continue
		}
		rec, err := r.cfg.Store.Load(url)
		if err == nil {
			err = r.cfg.Store.SaveKept(m.Key, m.Partition, rec)
		}
		if err != nil {
			r.log.Warn("crl displaced from a distribution point not kept on disk; its record keeps it until it is", "url", url,
				"issuer", m.Issuer, "partition", m.Partition, "err", err)
			ok = false
			continue
		}
		r.kept[pairOf(m)] = m
		o.saved, o.inRecord = true, false
	}
	return ok
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
		if !slices.ContainsFunc(r.sources, func(o *source) bool {
			return !o.retired && !o.derived && o.saved && o.idx != nil && pairOf(o.idx.Meta()) == p && crl.Compare(o.idx.Meta(), k) >= 0
		}) {
			continue
		}
		if err := r.cfg.Store.RemoveKept(p.key, p.partition); err != nil {
			r.log.Warn("crl kept copy superseded but not removed; a restart loads it beside the newer one", "issuer", k.Issuer, "partition", p.partition, "err", err)
			continue
		}
		delete(r.kept, p)
	}
}
