package edge

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
)

// RevokedError is a certificate refused by the revocation snapshot.
type RevokedError struct {
	// Serial is the certificate's serial number in hexadecimal.
	Serial string
	// Issuer is the issuer's distinguished name.
	Issuer string
	// Source is the distribution point the issuer's CRL came from.
	Source string
	// FailedClosed reports a refusal because the issuer's CRL is stale and
	// fail-closed is set, not because the serial is listed.
	FailedClosed bool
}

// Error names the serial and the issuer.
func (e *RevokedError) Error() string {
	if e.FailedClosed {
		return fmt.Sprintf("the CRL of issuer %q is past its nextUpdate and segmesh.crl.failClosedOnStale is set (serial %s)", e.Issuer, e.Serial)
	}
	return fmt.Sprintf("certificate serial %s is revoked by issuer %q", e.Serial, e.Issuer)
}

// UnknownIssuerError is a certificate refused because no CRL of its issuer
// is held while segmesh.crl.useCertificateCdps asks for one, or because the
// CRLs of its issuer held are partitions none of which covers it.
type UnknownIssuerError struct {
	// Issuer is the certificate's issuer.
	Issuer string
	// CDPs are the certificate's HTTP distribution points reported to the
	// crl role; empty when it names none segmesh can fetch.
	CDPs []string
	// Uncovered reports that CRLs of the issuer are held, but each covers
	// other distribution points than the certificate names (RFC 5280
	// 6.3.3): a partitioned CRL whose partition is not configured.
	Uncovered bool
}

// Error says what is missing and what happens next.
func (e *UnknownIssuerError) Error() string {
	if e.Uncovered {
		cdps := "none"
		if len(e.CDPs) > 0 {
			cdps = strings.Join(e.CDPs, ", ")
		}
		return fmt.Sprintf("the CRLs held for issuer %q are partitions that do not cover this certificate (its distribution points: %s): no CRL speaks for it, so it is refused; add the distribution point of its partition to remote.crl.distribution.http.uris (or turn on segmesh.crl.useCertificateCdps)", e.Issuer, cdps)
	}
	if len(e.CDPs) == 0 {
		return fmt.Sprintf("no CRL of issuer %q is held and the certificate names no HTTP distribution point (segmesh.crl.useCertificateCdps is on); add the issuer's CRL URL to remote.crl.distribution.http.uris", e.Issuer)
	}
	return fmt.Sprintf("no CRL of issuer %q is held yet (segmesh.crl.useCertificateCdps is on); its distribution points %s were reported to the crl role and the device's next attempt is checked against them", e.Issuer, strings.Join(e.CDPs, ", "))
}

// errNoSnapshot refuses certificates until the first snapshot has arrived.
var errNoSnapshot = errors.New("no revocation snapshot from the crl role yet; certificates are refused until one arrives")

// revocationConfig is what the edge needs to judge revocation itself.
type revocationConfig struct {
	// Enabled reports whether certificates are checked at all.
	Enabled bool
	// Policy is applied to every verdict: fail-closed on stale CRLs and,
	// with segmesh.crl.useCertificateCdps, refusal of unknown issuers.
	Policy crl.Policy
	// URLs are the configured distribution points; each must have produced
	// a CRL for the edge to be ready, and an issuer leaves the edge's
	// snapshot only when its source is no longer among them.
	URLs []string
	// Interval is the CRL refresh interval; a revocation stream broken for
	// longer makes the edge not ready. 0 means never.
	Interval time.Duration
}

// revocation holds the revocation snapshot built from the crl role's stream
// and answers checks from it without a lock. Per issuer a CRL never goes back
// to an older one (crl.Merge), staleness is judged on the edge's own clock
// (crl.Snapshot.Decide) and readiness says why revocation cannot be trusted.
type revocation struct {
	cfg revocationConfig
	log *slog.Logger
	now func() time.Time
	set crl.Set
	// gen counts snapshots put in force, from 1; 0 means none yet.
	gen atomic.Uint64
	// wire is the crl role's version of the last snapshot received, sent
	// back on reconnection so an unchanged snapshot is not sent again.
	wire  atomic.Uint64
	first chan struct{}
	// changedMu guards changed, closed and replaced at every store: the
	// handshakes waiting for a learnt CDP wait on it.
	changedMu sync.Mutex
	changed   chan struct{}
	// brokenSince is when the stream last broke (unix nanoseconds); 0
	// while it is up. It starts as the creation time: no stream yet.
	brokenSince atomic.Int64
	// rollbacks counts incoming CRLs refused as older than the one held.
	rollbacks atomic.Int64
	// learner reports certificate CDPs to the crl role; nil without
	// segmesh.crl.useCertificateCdps.
	learner *cdpLearner
	// panics are the stream's recovered panics (door_revocation_panic.go).
	panics streamPanics
	// minBackoff and maxBackoff bound the reconnection delay.
	minBackoff, maxBackoff time.Duration
}

func newRevocation(cfg revocationConfig, log *slog.Logger, now func() time.Time) *revocation {
	r := &revocation{cfg: cfg, log: log, now: now, first: make(chan struct{}), changed: make(chan struct{}),
		minBackoff: 250 * time.Millisecond, maxBackoff: 30 * time.Second}
	r.brokenSince.Store(now().UnixNano())
	return r
}

// apply merges the indexes of a complete snapshot of wire version v into
// the one in force and puts the result in force.
func (r *revocation) apply(v uint64, incoming []*crl.Index) {
	next, rollbacks := crl.Merge(r.gen.Load()+1, r.set.Load(), incoming, r.leftConfiguration)
	for _, rb := range rollbacks {
		r.rollbacks.Add(1)
		r.log.Warn("older CRL from the crl role refused; keeping the newer one in force",
			"issuer", rb.Held.Issuer, "received_crl_number", rb.Incoming.Number, "received_this_update", rb.Incoming.ThisUpdate,
			"crl_number", rb.Held.Number, "this_update", rb.Held.ThisUpdate, "snapshot_version", v)
	}
	r.wire.Store(v)
	r.set.Store(next)
	if r.gen.Add(1) == 1 {
		close(r.first)
	}
	r.notify()
}

// notify wakes the handshakes waiting for a change.
func (r *revocation) notify() {
	r.changedMu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.changedMu.Unlock()
}

// leftConfiguration reports whether an issuer missing from a snapshot goes:
// only when its source is no longer a configured distribution point and it
// could not have been learnt from a certificate.
func (r *revocation) leftConfiguration(m crl.Meta) bool {
	return !r.cfg.Policy.RequireKnownIssuer && !slices.Contains(r.cfg.URLs, m.Source)
}

// changes returns a channel closed at the next store.
func (r *revocation) changes() <-chan struct{} {
	r.changedMu.Lock()
	defer r.changedMu.Unlock()
	return r.changed
}

// current returns the current snapshot generation (0 before the first).
func (r *revocation) current() uint64 { return r.gen.Load() }

// ready returns why revocation checks cannot be trusted, or nil: no
// snapshot yet, the stream to the crl role broken for longer than the
// refresh interval (CRLs published since are not in force here), or a
// configured distribution point that has never produced a CRL.
func (r *revocation) ready() error {
	reason, err := r.unready()
	if reason == "" {
		return nil
	}
	return err
}

// Reasons the edge's revocation is not ready, as metric labels.
const (
	unreadyNoSnapshot   = "no_snapshot"
	unreadyStreamBroken = "stream_broken"
	unreadyCDPMissing   = "cdp_never_fetched"
	unreadyStale        = "crl_stale"
)

// unreadyReasons are every label of segmesh_edge_revocation_unready.
var unreadyReasons = []string{unreadyNoSnapshot, unreadyStreamBroken, unreadyCDPMissing, unreadyStale}

// unready returns the first reason revocation is not ready, and the error
// explaining it; "" and nil when it is.
func (r *revocation) unready() (string, error) {
	if !r.cfg.Enabled {
		return "", nil
	}
	panicked := r.panics.describe(r.wire.Load())
	if r.gen.Load() == 0 {
		if panicked != "" {
			return unreadyNoSnapshot, fmt.Errorf("%w; %s", errNoSnapshot, panicked)
		}
		return unreadyNoSnapshot, errNoSnapshot
	}
	if since := r.brokenSince.Load(); since != 0 && r.cfg.Interval > 0 {
		t := time.Unix(0, since)
		if d := r.now().Sub(t); d > r.cfg.Interval {
			err := fmt.Errorf("revocation stream to the crl role broken since %s (%s, longer than the CRL refresh interval %s): CRLs published since are not in force; check the crl role and segmesh.peers.crl",
				t.UTC().Format(time.RFC3339), d.Round(time.Second), r.cfg.Interval)
			if panicked != "" {
				err = fmt.Errorf("%w; %s", err, panicked)
			}
			return unreadyStreamBroken, err
		}
	}
	if missing := r.missingCDPs(); len(missing) > 0 {
		return unreadyCDPMissing, fmt.Errorf("configured distribution point %s has never produced a CRL at this edge: certificates of its issuer are not checked; see the crl role's status for the cause", strings.Join(missing, ", "))
	}
	// Fail-closed on a stale CRL refuses every certificate of its issuer:
	// the edge says so. Fail-open keeps serving by the operator's choice and
	// shows the stale CRL on /status and segmesh_edge_crl_next_update_seconds.
	if r.cfg.Policy.FailClosedOnStale {
		if stale := r.staleSources(); len(stale) > 0 {
			return unreadyStale, fmt.Errorf("the CRL from %s is past its nextUpdate on this edge's clock and segmesh.crl.failClosedOnStale is set: every certificate of its issuer (of its partition, for a partitioned CRL) is refused until a newer CRL arrives; see the crl role's status for the distribution point's error", strings.Join(stale, ", "))
		}
	}
	return "", nil
}

// notes returns what /readyz must show while ready: a CRL past its
// nextUpdate under fail-open (failClosedOnStale off), whose issuer's
// certificates are still accepted by the operator's choice. Fail-closed
// makes the same state a reason for not ready (unready). A panic on the
// stream is noted until a snapshot is put in force again.
func (r *revocation) notes() []string {
	if !r.cfg.Enabled {
		return nil
	}
	var notes []string
	if p := r.panics.describe(r.wire.Load()); p != "" {
		notes = append(notes, "revocation: "+p)
	}
	if r.cfg.Policy.FailClosedOnStale {
		return notes
	}
	if stale := r.staleSources(); len(stale) > 0 {
		return append(notes, fmt.Sprintf("revocation: the CRL from %s is past its nextUpdate on this edge's clock; segmesh.crl.failClosedOnStale is off, so certificates of its issuer are accepted without current revocation data: see the crl role's status for the distribution point's error",
			strings.Join(stale, ", ")))
	}
	return notes
}

// staleSources returns the distribution points whose CRL in force is past
// its nextUpdate on the edge's clock.
func (r *revocation) staleSources() []string {
	now := r.now()
	var stale []string
	for _, ix := range r.set.Load().Indexes() {
		if m := ix.Meta(); crl.StaleAt(m.NextUpdate, now) {
			stale = append(stale, m.Source)
		}
	}
	return stale
}

// missingCDPs returns the configured distribution points no CRL in force
// came from.
func (r *revocation) missingCDPs() []string {
	snap := r.set.Load()
	var missing []string
	for _, u := range r.cfg.URLs {
		if !slices.ContainsFunc(snap.Indexes(), func(ix *crl.Index) bool { return ix.Meta().Source == u }) {
			missing = append(missing, u)
		}
	}
	return missing
}

// check returns the generation it answered from and nil when c may be
// used; a *RevokedError when it is revoked or its issuer's CRL is stale
// with fail-closed; an *UnknownIssuerError when no CRL of its issuer is held
// and the policy requires one, or when only partitions that do not cover it
// are held (always), (after reporting its distribution points to
// the crl role and waiting a moment for their CRL); errNoSnapshot before the
// first snapshot. The verdict is crl.Snapshot.Decide's, diagnose's too.
func (r *revocation) check(c *x509.Certificate) (uint64, error) {
	if !r.cfg.Enabled {
		return 0, nil
	}
	gen := r.gen.Load()
	s := r.set.Load()
	if s == nil {
		return 0, errNoSnapshot
	}
	d := s.Decide(c, r.now(), r.cfg.Policy)
	if d.Verdict == crl.Unknown && d.Refused && r.learner != nil {
		gen, d = r.learner.learn(r, c)
	}
	if !d.Refused {
		return gen, nil
	}
	if d.Verdict == crl.Unknown {
		return gen, &UnknownIssuerError{Issuer: c.Issuer.String(), CDPs: httpCDPs(c), Uncovered: d.Info.Uncovered}
	}
	return gen, &RevokedError{Serial: c.SerialNumber.Text(16), Issuer: d.Info.Issuer, Source: d.Info.Source, FailedClosed: d.Info.FailedClosed}
}

// expire starts a new generation when a CRL in force has passed its
// nextUpdate since the last call, so connections checked before are checked
// again (fail-closed refuses their next request). It returns when to call
// it next: at the earliest nextUpdate still ahead, at most a minute away.
func (r *revocation) expire(last time.Time) (next time.Duration, now time.Time) {
	now = r.now()
	next = time.Minute
	passed := false
	for _, ix := range r.set.Load().Indexes() {
		nu := ix.Meta().NextUpdate
		switch {
		case nu.IsZero():
		case nu.After(now):
			next = min(next, nu.Sub(now)+time.Second)
		case nu.After(last):
			passed = true
		}
	}
	if passed {
		r.log.Warn("a CRL in force at this edge is past its nextUpdate; checking open connections again",
			"fail_closed", r.cfg.Policy.FailClosedOnStale)
		r.gen.Add(1)
		r.notify()
	}
	return next, now
}

// watchExpiry calls expire on its schedule, and again whenever the
// snapshot changes (its nextUpdates are then new), until ctx ends.
func (r *revocation) watchExpiry(ctx context.Context) {
	last := r.now()
	for {
		changed := r.changes()
		next, now := r.expire(last)
		last = now
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-changed:
			t.Stop()
		}
	}
}
