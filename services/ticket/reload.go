package ticket

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/s4u"
	"github.com/segmesh/segmesh/pkg/upn"
)

// liveKeys are the settings the ticket role applies from a reloaded
// config.json (role.ConfigApplier). kcd.enabled and segmesh.ticket.allowRc4
// are not among them: turning KCD off or RC4 on weakens the gateway, and
// takes a restart (segmesh run names it as waiting for one).
var liveKeys = []string{
	"kcd.targetSPN", "kcd.serviceAccountUserName", "kcd.serviceAccountPassword", "kcd.domains",
	"segmesh.dnsServer", "segmesh.ticket.cacheSize", "segmesh.ticket.kdcTimeoutSeconds",
	"segmesh.ticket.maxConcurrentKdcExchanges",
	"segmesh.ticket.armorAccountUserName", "segmesh.ticket.armorAccountPassword",
}

// spnGrace is how long an SPN a reload removed from kcd.targetSPN is still
// issued: a request that took its SPN from the configuration before (an
// edge of the same process commits after the ticket role; a request keeps
// its SPN for its retry after a 401) gets its ticket instead of a refusal
// at the switch. The edges allowed to ask are the same, and they ask for
// the new SPN once they have switched.
const spnGrace = time.Minute

// proveTimeout bounds the AS exchange that proves a new service account,
// password or set of KDCs before a reload commits to it.
const proveTimeout = 30 * time.Second

// credentials are what an AS exchange proves, as the parts
// refusal.Memory digests.
func credentials(c Config) []string {
	return []string{c.Realm, upn.FoldASCII(c.Service), c.Password, upn.FoldASCII(c.ArmorAccount), c.ArmorPassword}
}

// noteRefusal remembers err when it is the KDC's definitive refusal of c:
// not asked again for refusal.DefaultWindow, so that a mistyped password
// costs the account one failed pre-authentication, not one per reload.
func (s *Service) noteRefusal(c Config, err error) {
	var ke *s4u.KDCError
	if !errors.As(err, &ke) || ke.Temporary() {
		return
	}
	s.refusals.Note(err, credentials(c)...)
}

// LiveKeys implements role.ConfigApplier.
func (s *Service) LiveKeys() []string { return liveKeys }

// PrepareConfig implements role.ConfigApplier. When next changes what the
// S4U client is made of (the service account, its password, the realms and
// their KDCs, the DNS server, the FAST armour, the KDC timeout or
// concurrency), it builds a new client and proves it with one AS exchange:
// a KDC refusing it (a wrong password, an unknown account: the code and
// pkg/krbhint's fix) or no KDC answering refuses the reload, and the client
// in force stays. Turning FAST armour off is refused: it takes a restart.
//
// The commit swaps the configuration and client atomically: requests under
// way finish on the old client; the cached tickets made by another service
// account, and those of an SPN no longer configured, are dropped; the
// others stay (an unrelated edit costs the KDC nothing).
func (s *Service) PrepareConfig(ctx context.Context, next *config.Config) (func(), error) {
	cur := s.engine()
	cfg := ConfigFrom(next)
	// Not settings of config.json, or not live: kept as they are.
	cfg.Enabled, cfg.AllowRC4 = cur.cfg.Enabled, cur.cfg.AllowRC4
	cfg.NegativeTTL, cfg.MinRemaining, cfg.RenewRetry = cur.cfg.NegativeTTL, cur.cfg.MinRemaining, cur.cfg.RenewRetry
	cfg.RefreshMargin, cfg.RefreshJitter = cur.cfg.RefreshMargin, cur.cfg.RefreshJitter
	if err := config.ErrorOf(next.FilePath(), cfg.problems()); err != nil {
		return nil, fmt.Errorf("ticket: %w", err)
	}
	if cur.cfg.ArmorAccount != "" && cfg.ArmorAccount == "" {
		return nil, fmt.Errorf("ticket: segmesh.ticket.armorAccountUserName: turning FAST armour off (was %s) weakens the service account's AS exchange and takes a restart; put the armour account back, or restart segmesh to apply it", cur.cfg.ArmorAccount)
	}
	eng := &engine{cfg: cfg, client: cur.client, renew: cur.renew}
	if cfg.Enabled && clientChanged(cur.cfg, cfg) {
		if err := s.refusals.Lately(credentials(cfg)...); err != nil {
			return nil, err
		}
		var err error
		if eng, err = s.build(cfg, cur); err != nil {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(ctx, proveTimeout)
		_, err = eng.client.TGT(pctx, cfg.Realm)
		cancel()
		if err != nil {
			eng.client.Wait()
			err = proofError(cur.cfg, cfg, err)
			s.noteRefusal(cfg, err)
			return nil, err
		}
	}
	newAccount := !sameAccount(cur.cfg, cfg)
	return func() { s.commit(cur, eng, newAccount) }, nil
}

// commit puts eng in force in place of cur.
func (s *Service) commit(cur, eng *engine, newAccount bool) {
	eng.retired = retiredSPNs(cur, eng.cfg, s.now())
	s.eng.Store(eng)
	s.mu.Lock()
	if eng.client != cur.client {
		s.tgtErr = nil // proven by PrepareConfig's AS exchange
		if old := cur.client; old != nil && !s.stopped {
			// Its background TGT refreshes end on their own; Stop waits.
			s.retiredWG.Go(old.Wait)
		}
	}
	s.mu.Unlock()
	s.cache.resize(eng.cfg.CacheSize)
	dropped := s.cache.drop(newAccount, eng.cfg.SPNs)
	s.log.Info("ticket configuration applied; requests under way finish on the previous one",
		"service_account", eng.cfg.Service+"@"+eng.cfg.Realm, "new_client", eng.client != cur.client,
		"target_spns", strings.Join(eng.cfg.SPNs, ","), "cached_tickets_dropped", dropped)
	for spn, until := range eng.retired {
		s.log.Info("an SPN removed from kcd.targetSPN is still issued for requests under way", "spn", spn,
			"until", until.UTC().Format(time.RFC3339))
	}
}

// retiredSPNs returns the SPNs of cur no longer in next, each issued until
// spnGrace after now, and those cur kept from earlier reloads whose grace
// has not ended (a later reload does not extend it).
func retiredSPNs(cur *engine, next Config, now time.Time) map[string]time.Time {
	out := map[string]time.Time{}
	for spn, until := range cur.retired {
		if _, ok := next.canonicalSPN(spn); !ok && now.Before(until) {
			out[spn] = until
		}
	}
	for _, spn := range cur.cfg.SPNs {
		if _, ok := next.canonicalSPN(spn); !ok {
			out[spn] = now.Add(spnGrace)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// issuable returns the spelling of spn tickets are issued under, and
// whether they are: a configured target SPN, or one a reload removed less
// than spnGrace before now.
func (e *engine) issuable(spn string, now time.Time) (string, bool) {
	if canon, ok := e.cfg.canonicalSPN(spn); ok {
		return canon, true
	}
	for s, until := range e.retired {
		if strings.EqualFold(s, spn) && now.Before(until) {
			return s, true
		}
	}
	return "", false
}

// build makes the engine of cfg: its S4U client (no I/O) and renewer,
// which keeps what prev's learnt about the KDC's renewals.
func (s *Service) build(cfg Config, prev *engine) (*engine, error) {
	e := &engine{cfg: cfg}
	if !cfg.Enabled {
		return e, nil
	}
	cl, err := cfg.Build(BuildOptions{Exchanger: s.opts.exchanger, Now: s.now, Logger: s.log, Hooks: s4u.Hooks{OnExchange: s.onExchange, OnPanic: s.onTGTPanic}})
	if err != nil {
		return nil, err
	}
	e.client = cl
	e.renew = &renewer{client: cl, now: s.now, log: s.log, retry: cfg.RenewRetry, count: s.renewals, logged: map[int32]bool{}}
	if prev != nil && prev.renew != nil && prev.cfg.Realm == cfg.Realm {
		e.renew.inherit(prev.renew)
	}
	return e, nil
}

// clientChanged reports whether the S4U client of a differs from b's.
func clientChanged(a, b Config) bool {
	return a.Realm != b.Realm || a.Service != b.Service || a.Password != b.Password ||
		a.ArmorAccount != b.ArmorAccount || a.ArmorPassword != b.ArmorPassword ||
		!maps.EqualFunc(a.KDCs, b.KDCs, slices.Equal) || a.DNSServer != b.DNSServer ||
		!slices.Equal(a.OtherRealms, b.OtherRealms) || a.KDCTimeout != b.KDCTimeout || a.MaxConcurrent != b.MaxConcurrent
}

// sameAccount reports whether a and b name the same service account (a
// changed password is the same account: its tickets stay valid).
func sameAccount(a, b Config) bool {
	return a.Realm == b.Realm && upn.FoldASCII(a.Service) == upn.FoldASCII(b.Service)
}

// proofError explains why the new client could not be proven.
func proofError(cur, next Config, err error) error {
	what := "the new KDC settings"
	switch {
	case !sameAccount(cur, next):
		what = "the new service account " + next.Service + "@" + next.Realm
	case cur.Password != next.Password:
		what = "the new password of " + next.Service + "@" + next.Realm
	case cur.ArmorAccount != next.ArmorAccount || cur.ArmorPassword != next.ArmorPassword:
		what = "the new FAST armour account " + next.ArmorAccount
	}
	var ke *s4u.KDCError
	if errors.As(err, &ke) {
		return fmt.Errorf("ticket: the KDC refused %s (AS exchange), so the running configuration stays in use: %w", what, err)
	}
	return fmt.Errorf("ticket: %s could not be checked with an AS exchange (%w); the running configuration stays in use: "+
		"reload again (SIGHUP) once a KDC of %s answers", what, err, next.Realm)
}

// inherit takes over old's knowledge that the KDC refuses renewals.
func (r *renewer) inherit(old *renewer) {
	old.mu.Lock()
	refusals, until := old.refusals, old.pausedUntil
	old.mu.Unlock()
	r.mu.Lock()
	r.refusals, r.pausedUntil = refusals, until
	r.mu.Unlock()
}
