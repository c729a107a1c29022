package kdc

import (
	"context"
	"strings"
	"time"

	"github.com/segmesh/segmesh/pkg/dnssrv"
)

// DiscoverInfo describes one DNS lookup of a realm's KDCs.
type DiscoverInfo struct {
	// Realm is the realm as configured.
	Realm string
	// Answer is what DNS returned (the query, the server, the records).
	Answer dnssrv.Answer
	// Err is why the lookup gave no address; nil when it did.
	Err error
}

// Discovered returns the last DNS answer that gave the realm's KDCs and
// when it was taken; ok is false for a realm with configured addresses or
// one not yet looked up.
func (t *Transport) Discovered(realmName string) (a dnssrv.Answer, at time.Time, ok bool) {
	r, found := t.realms[strings.ToUpper(realmName)]
	if !found || !r.discovered {
		return dnssrv.Answer{}, time.Time{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.answer, r.resolvedAt, !r.resolvedAt.IsZero()
}

// discover asks DNS for the realm's KDCs when it has none yet, when the last
// answer is older than Refresh, or after every KDC failed. A failed lookup
// keeps the last good addresses (a DNS outage does not stop a realm whose
// DCs answer); it is an error only when there are none.
func (t *Transport) discover(ctx context.Context, r *realm) error {
	if !r.due(t.cfg.Now(), t.cfg.Refresh) {
		return nil
	}
	r.lookupMu.Lock()
	defer r.lookupMu.Unlock()
	if !r.due(t.cfg.Now(), t.cfg.Refresh) {
		return nil // another exchange looked it up meanwhile
	}
	a, err := t.cfg.DNS.Lookup(ctx, "kerberos", "tcp", r.name)
	if err == nil {
		// KDCs outside the realm's DNS domain are not used, as Global
		// Catalogs outside the domain are not (pkg/certmap): DNS is not
		// authenticated, and a spoofed answer would send the service
		// account's pre-authentication to a host of its own naming. An AD
		// realm's DNS domain is the realm's name; DCs named outside it (a
		// disjoint namespace) are written in kcd.domains[].domainController.
		var outside []string
		a, outside, err = a.Within(r.name)
		if len(outside) > 0 {
			t.log.WarnContext(ctx, "KDCs outside the realm's DNS domain in the DNS answer are not used: write the domain controllers in kcd.domains[].domainController if they are named outside it", "realm", r.name, "hosts", strings.Join(outside, ","))
		}
	}
	if h := t.cfg.Hooks.OnDiscover; h != nil {
		h(DiscoverInfo{Realm: r.name, Answer: a, Err: err})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if len(r.addrs) > 0 {
			t.log.WarnContext(ctx, "KDC lookup in DNS failed, keeping the KDCs found before", "realm", r.name, "kdcs", strings.Join(r.addrs, ","), "error", err)
			// Ask again at the next refresh, not at every exchange.
			r.resolvedAt, r.stale = t.cfg.Now(), false
			return nil
		}
		return err
	}
	r.answer, r.addrs, r.resolvedAt, r.stale = a, a.Addrs(), t.cfg.Now(), false
	t.log.DebugContext(ctx, "KDCs found in DNS", "realm", r.name, "answer", a.String())
	return nil
}

// due reports whether the realm's KDCs are to be looked up now.
func (r *realm) due(now time.Time, refresh time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.addrs) == 0 || r.stale || now.Sub(r.resolvedAt) >= refresh
}

// setStale makes the next exchange ask DNS again: every KDC failed, and the
// domain may have new domain controllers.
func (r *realm) setStale() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stale = true
}
