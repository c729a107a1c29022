package refresh

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"time"

	"github.com/segmesh/segmesh/pkg/crl/fetch"
)

// The state directory's housekeeping, as passed to
// Hooks.OnHousekeepingFailed and counted in HousekeepingStatus.Failures.
// None of it writes a CRL, and none of its failures loses one: each
// leaves more on disk than needed (an older copy, a record a start reads
// again, a mark missing), which the next start or publish decides again,
// so it never makes a revoked serial good (no alert; SavedRecord and
// SavedKept are the failures that can).
const (
	// HousekeepTouch is a URL's record's description rewritten after a
	// 304 or the same CRL again (validators, fetch time). Failed, the
	// record keeps the CRL with the validators before: at worst a full
	// download after a restart.
	HousekeepTouch = "touch"
	// HousekeepMark is a URL's record marked as copied to the kept CRLs,
	// or unmarked (store.SetKept). Failed, an unmarked record stays a
	// floor at the start (removing its kept copy does not drop the CRL),
	// and a kept copy whose superseding record is still marked stays on
	// disk.
	HousekeepMark = "mark"
	// HousekeepRemoveKept is a kept CRL that a configured URL's record
	// supersedes, removed. Failed, the older copy stays (tried again at
	// every publish), and a start loads it beside the newer one.
	HousekeepRemoveKept = "remove_kept"
	// HousekeepRemoveRecord is a record of a URL no longer configured
	// removed at the start (copied to kept/, superseded, or its kept copy
	// dropped). Failed, the record stays, and the next start decides it
	// again.
	HousekeepRemoveRecord = "remove_record"
)

// HousekeepingStatus is the state directory's housekeeping that failed
// since the start (see HousekeepTouch and the others).
type HousekeepingStatus struct {
	// Failures counts the failures by what (HousekeepTouch, ...).
	Failures map[string]int
	// LastError is the last failure, naming what and where; nil if none.
	LastError error
	// LastAt is when it happened; zero if none.
	LastAt time.Time
}

// Housekeeping returns the state directory's housekeeping that failed
// since the start: before, such failures were only logged.
func (r *Refresher) Housekeeping() HousekeepingStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.housekeeping
	h.Failures = maps.Clone(h.Failures)
	return h
}

// housekeepingFailed records that the housekeeping what (HousekeepTouch,
// ...) of where (a URL, or a file) failed with err, for /status and the
// metric, and logs msg. r.mu is held.
func (r *Refresher) housekeepingFailed(what, where string, err error, msg string, attrs ...any) {
	r.log.Warn(msg, append(attrs, "err", err)...)
	if r.housekeeping.Failures == nil {
		r.housekeeping.Failures = map[string]int{}
	}
	r.housekeeping.Failures[what]++
	r.housekeeping.LastError = fmt.Errorf("%s %s: %w", what, where, err)
	r.housekeeping.LastAt = r.clock.Now()
	if h := r.cfg.Hooks.OnHousekeepingFailed; h != nil {
		h(where, what)
	}
}

// touch rewrites the description of url's record after a 304 or the
// same CRL again. r.mu is held.
func (r *Refresher) touch(url string, v fetch.Validators, now time.Time) {
	if r.cfg.Store == nil {
		return
	}
	if err := r.cfg.Store.Touch(url, v, now); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.housekeepingFailed(HousekeepTouch, url, err, "crl stored copy's validators not updated; it keeps the CRL with the validators before", "url", url)
	}
}
