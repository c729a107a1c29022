package refresh

import (
	"context"
	"runtime/debug"
	"slices"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// guardedAttempt is attempt with a panic (a parser or client meeting bytes
// a distribution point sent that it did not expect) turned into a failed
// fetch of kind crl.KindPanic. Each URL is fetched in a goroutine of its
// own (fetchAll), where nothing else would recover it: the process ended
// with every role in it (TestAttackPanicInACRLFetch). As a failed fetch,
// it keeps the last good CRL in force, shows in the URL's status, goes
// stale on /readyz and /status when it lasts, reaches Hooks.OnFetch as
// "panic", and the URL is fetched again after the backoff. The panic value
// and its stack go to the log only, at error level: the status keeps a
// fixed text.
func (r *Refresher) guardedAttempt(ctx context.Context, url string, cur *crl.Index, v fetch.Validators) (result string, got fetched, newV fetch.Validators, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("crl fetch caused a panic; counted as a failed fetch of this distribution point, the refresh goes on",
				"url", url, "panic", telemetry.PanicValue(p), "stack", string(debug.Stack()))
			err = &crl.Error{URL: url, Kind: crl.KindPanic}
			result, got, newV = kindLabel(err), fetched{}, v
		}
	}()
	return r.attempt(ctx, url, cur, v)
}

// guardedCommit is commit with a panic in it turned into a failed attempt
// of kind crl.KindPanic, which it returns (nil without a panic). commit
// runs under r.mu in fetchAll's goroutine of the URL: a panic there ended
// the process, every role in it, with the lock held
// (TestAttackPanicInACRLCommit). The URL's source and the list of sources
// are put back as they were before commit, so a half-done commit (a CRL
// put in force but not saved, a displaced CRL taken out of the list but
// not added back) leaves nothing in force that a whole one would not
// have: the last good CRL stays, as after a fetch that panicked. What
// commit wrote to disk stays there; it is a CRL that passed every check.
// So a source restored after a new CRL no longer counts as saved: commit
// may have written its URL's record with that CRL (after keeping a
// displaced one in kept/) before it panicked (without a new CRL, commit
// only writes the one in force, its unsaved record). Counted saved, the restored source was
// taken for a record holding its CRL, and the next publish removed the
// kept copy as superseded by it (forgetKept): after a restart the
// displaced CRL was gone, and a mirror's older one decided
// (TestAttackPanicInACommitThatDisplaces, serial 5 good).
// The failure is then counted as commit counts one (failures, last error,
// backoff) without commit's own code, which just panicked. r.mu is held.
func (r *Refresher) guardedCommit(ctx context.Context, s *source, cur *crl.Index, got fetched, newV fetch.Validators, err error, now time.Time) (perr error) {
	before, sources := *s, slices.Clone(r.sources)
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		r.log.Error("crl commit caused a panic; the last good CRL of this distribution point stays in force and the attempt counts as failed, the refresh goes on",
			"url", s.url, "panic", telemetry.PanicValue(p), "stack", string(debug.Stack()))
		*s, r.sources = before, sources
		if got.idx != nil {
			s.saved = false // its record may hold the CRL commit was putting in force
		}
		perr = &crl.Error{URL: s.url, Kind: crl.KindPanic}
		s.failures++
		s.lastErr = perr
		s.next = now.Add(min(r.cfg.Backoff.Delay(s.failures, r.rnd()), r.cfg.Interval))
	}()
	r.commit(ctx, s, cur, got, newV, err, now)
	return nil
}
