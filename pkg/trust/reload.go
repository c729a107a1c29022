package trust

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultPollInterval is how often a Reloader looks for changed files when
// ReloaderOptions.PollInterval is zero.
const DefaultPollInterval = 30 * time.Second

// Ticker delivers poll ticks; *time.Ticker does, through NewTimeTicker. Tests inject a fake.
type Ticker interface {
	// Chan returns the channel the ticks arrive on.
	Chan() <-chan time.Time
	// Stop stops the ticks.
	Stop()
}

// NewTimeTicker returns a Ticker backed by time.NewTicker.
func NewTimeTicker(d time.Duration) Ticker { return timeTicker{time.NewTicker(d)} }

type timeTicker struct{ t *time.Ticker }

func (t timeTicker) Chan() <-chan time.Time { return t.t.C }
func (t timeTicker) Stop()                  { t.t.Stop() }

// ReloaderOptions configures a Reloader.
type ReloaderOptions struct {
	// Spec is the trust-store configuration to load and watch.
	Spec Spec
	// PollInterval is how often Run reads the files to see whether they changed. Zero
	// means DefaultPollInterval; negative means no polling (Reload and Update only).
	PollInterval time.Duration
	// Logger receives reload events; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NewTicker makes Run's ticker; nil means NewTimeTicker.
	NewTicker func(time.Duration) Ticker
	// OnReload, when not nil, is called after every reload attempt (not after a poll that
	// found nothing changed) with its outcome: feed a reload gauge or counter with it. It
	// runs with the Reloader's lock held and must not call back into the Reloader.
	OnReload func(ok bool, err error)
}

// ReloadStats counts reload attempts after the initial load.
type ReloadStats struct {
	// Successes and Failures count reload attempts by outcome.
	Successes, Failures uint64
	// LastAttempt is when the last reload was tried; zero before the first one.
	LastAttempt time.Time
	// LastError is the error of the last attempt; nil when it succeeded or none was made.
	LastError error
}

// Reloader holds the current Store and replaces it when the trust-store files change
// (Run polls them), on Reload (SIGHUP) or on Update (a new configuration). A load that fails
// leaves the previous Store in use and is logged as such. Store is lock-free, for the TLS
// handshake path.
type Reloader struct {
	current  atomic.Pointer[Store]
	log      *slog.Logger
	now      func() time.Time
	ticker   func(time.Duration) Ticker
	interval time.Duration
	onReload func(bool, error)

	mu       sync.Mutex // serialises reloads; guards the fields below
	spec     Spec
	lastSeen [sha256.Size]byte // fingerprint of the files at the last attempt
	stats    ReloadStats
}

// NewReloader loads the trust store once and returns a Reloader holding it. It fails, with
// Load's error, when that first load fails: a broken trust store must stop the start.
func NewReloader(opts ReloaderOptions) (*Reloader, error) {
	r := &Reloader{
		log:      opts.Logger,
		now:      opts.Now,
		ticker:   opts.NewTicker,
		interval: opts.PollInterval,
		onReload: opts.OnReload,
		spec:     opts.Spec,
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.ticker == nil {
		r.ticker = NewTimeTicker
	}
	if r.interval == 0 {
		r.interval = DefaultPollInterval
	}
	s, err := load(r.spec, r.now())
	if err != nil {
		return nil, err
	}
	r.current.Store(s)
	r.lastSeen = s.fingerprint
	r.logWarnings(s)
	return r, nil
}

// Store returns the current trust store.
func (r *Reloader) Store() *Store { return r.current.Load() }

// Stats returns the reload counters.
func (r *Reloader) Stats() ReloadStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Reload loads the trust store again whether or not the files changed, as on SIGHUP. On
// error the previous Store stays in use and the error is returned (and logged).
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked("reload")
}

// Update switches to a new configuration (config.json changed) and loads it. The new Spec
// is kept even when its load fails, so that polling picks the files up once they are fixed;
// until then the previous Store stays in use.
func (r *Reloader) Update(spec Spec) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spec = spec
	return r.reloadLocked("config")
}

// Prepare loads the trust store spec names without putting it in force, for
// a reload applied in two phases (role.ConfigApplier): commit switches to
// spec and the loaded store (it cannot fail); on error nothing changes, not
// even the Spec polled, and the failure is logged and counted like a failed
// reload. A poll between Prepare and commit may reload the old files; commit
// still wins.
func (r *Reloader) Prepare(spec Spec) (commit func(), err error) {
	now := r.now()
	s, err := load(spec, now)
	if err != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.stats.LastAttempt = now
		r.failedLocked("config", err)
		return nil, err
	}
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.spec = spec
		r.stats.LastAttempt = now
		r.installLocked("config", s)
	}, nil
}

// Poll reads the files and reloads when they differ from the last attempt. It reports
// whether it tried a reload and that reload's error. The same broken content is tried (and
// logged) once, not at every poll.
func (r *Reloader) Poll() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if fingerprintOf(r.spec) == r.lastSeen {
		return false, nil
	}
	return true, r.reloadLocked("file change")
}

// Run polls the files every PollInterval until ctx is done, then returns nil. Reload errors
// are logged, not returned: the previous Store stays in use.
func (r *Reloader) Run(ctx context.Context) error {
	if r.interval < 0 {
		<-ctx.Done()
		return nil
	}
	t := r.ticker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.Chan():
			_, _ = r.Poll() // the outcome is logged and counted by reloadLocked
		}
	}
}

func (r *Reloader) reloadLocked(trigger string) error {
	now := r.now()
	r.stats.LastAttempt = now
	s, err := load(r.spec, now)
	if err != nil {
		r.lastSeen = fingerprintOf(r.spec)
		r.failedLocked(trigger, err)
		return err
	}
	r.installLocked(trigger, s)
	return nil
}

// failedLocked counts and logs a load that failed; the current Store stays.
func (r *Reloader) failedLocked(trigger string, err error) {
	r.stats.Failures++
	r.stats.LastError = err
	old := r.current.Load()
	r.log.Error("trust store reload failed; previous trust store still in use",
		"trigger", trigger, "source", old.Source(), "loaded_at", old.LoadedAt(),
		"certificates", len(old.certs), "error", err)
	if r.onReload != nil {
		r.onReload(false, err)
	}
}

// installLocked puts s in force and counts and logs the reload.
func (r *Reloader) installLocked(trigger string, s *Store) {
	r.current.Store(s)
	r.lastSeen = s.fingerprint
	r.stats.Successes++
	r.stats.LastError = nil
	r.log.Info("trust store reloaded", "trigger", trigger, "source", s.Source(), "certificates", len(s.certs))
	r.logWarnings(s)
	if r.onReload != nil {
		r.onReload(true, nil)
	}
}

func (r *Reloader) logWarnings(s *Store) {
	for _, w := range s.warnings {
		r.log.Warn("trust store warning", "key", w.Key, "value", w.Value, "problem", w.Message, "fix", w.Fix)
	}
}

// fingerprintOf reads the files spec names and digests them as build does, so that it
// equals the fingerprint of a Store built from the same bytes.
func fingerprintOf(spec Spec) [sha256.Size]byte {
	var ps problems
	p := spec.plan(&ps)
	h := sha256.New()
	if len(ps.errors()) == 0 {
		for _, path := range p.paths {
			data, err := readFile(path)
			writeFingerprint(h, path, data, err)
		}
	}
	h.Write([]byte{0xff})
	h.Write(spec.ConsoleChainPEM)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
