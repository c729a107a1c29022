package refresh

import (
	"slices"

	"github.com/segmesh/segmesh/pkg/crl"
)

// publish builds the snapshot of the sources' CRLs, with staleness as of
// now, and publishes it when it differs from the last one (or force).
func (r *Refresher) publish(force bool) {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropSuperseded()
	if r.cfg.Store != nil {
		r.keepUnsaved()
		r.forgetKept()
	}
	var sig []sigEntry
	var list []*crl.Index
	for _, s := range r.sources {
		if s.idx == nil {
			continue
		}
		m := s.idx.Meta()
		stale := crl.StaleAt(m.NextUpdate, now)
		if stale && !s.stale {
			if r.cfg.FailClosedOnStale {
				r.log.Warn("crl is past nextUpdate; refusing, fail closed, every certificate of its issuer (of its partition, for a partitioned CRL) until a current CRL arrives",
					"url", s.url, "issuer", m.Issuer, "partition", m.Partition, "next_update", m.NextUpdate)
			} else {
				r.log.Warn("crl is past nextUpdate; keeping it as the last known good CRL",
					"url", s.url, "issuer", m.Issuer, "next_update", m.NextUpdate)
			}
		}
		s.stale = stale
		sig = append(sig, sigEntry{idx: s.idx, stale: stale})
		m.Stale = stale
		m.FailClosed = r.cfg.FailClosedOnStale
		list = append(list, s.idx.WithMeta(m))
	}
	if !force && slices.Equal(sig, r.lastSig) {
		return
	}
	r.lastSig = sig
	r.version++
	snap := crl.NewSnapshot(r.version, list...)
	r.set.Store(snap)
	for ch := range r.subs {
		select {
		case <-ch: // drop the unread older one
		default:
		}
		ch <- snap
	}
	if h := r.cfg.Hooks.OnPublish; h != nil {
		h(snap)
	}
}
