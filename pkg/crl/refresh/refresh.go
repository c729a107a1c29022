package refresh

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
	"github.com/segmesh/segmesh/pkg/crl/store"
)

// DefaultInterval is SEG's remote.crl.fetch.interval.in.minutes default: a day.
const DefaultInterval = 1440 * time.Minute

// MaxDerived caps the distribution points learnt from certificates.
const MaxDerived = 64

// MaxKept is the default cap of the kept CRLs (kept/) beyond which no
// CRL of a new issuer and partition is copied there from a distribution
// point learnt from a certificate (a certificate can name many URLs), nor
// from the record of one no longer configured found at the start. Such a
// CRL stays in its URL's record, which every start reads as the floor of
// its partition (loadFloors), and is put in force from there; the log
// says so once. Displaced and retired CRLs of configured distribution
// points are kept whatever the count.
const MaxKept = 256

// Fetch results besides the crl.Kind labels, as passed to Hooks.OnFetch.
const (
	// ResultOK is a new CRL accepted.
	ResultOK = "ok"
	// ResultNotModified is a 304 or the same CRL again.
	ResultNotModified = "not_modified"
)

// Config configures a Refresher.
type Config struct {
	// URLs are the configured distribution points
	// (remote.crl.distribution.http.uris); http and https only.
	URLs []string
	// Interval is the refresh period (remote.crl.fetch.interval.in.minutes);
	// 0 means DefaultInterval. Tests may use seconds.
	Interval time.Duration
	// FailHard makes StartupFetch fail when a configured URL can be neither
	// fetched nor loaded from disk
	// (fail.hard.on.crl.download.failure.during.server.startup; SEG's
	// default is true, which the caller passes).
	FailHard bool
	// FailClosedOnStale refuses every certificate of an issuer whose CRL is
	// past nextUpdate; false keeps using it as the last known good one.
	FailClosedOnStale bool
	// Trusted returns the trusted CA certificates CRL signatures are checked
	// against; it is called at every verification, so a reloaded trust store
	// applies at once. Required.
	Trusted func() []*x509.Certificate
	// DeriveFromCAs adds the http(s) CRL distribution points named in the
	// trusted CA certificates to URLs (beyond SEG; off by default).
	DeriveFromCAs bool
	// Store keeps the last good CRLs on disk; nil means memory only.
	Store *store.Store
	// MaxKept caps the CRLs learnt from certificates kept on disk; 0
	// means MaxKept.
	MaxKept int
	// Fetcher downloads; nil means a zero fetch.Fetcher.
	Fetcher *fetch.Fetcher
	// Backoff spaces retries after failures.
	Backoff Backoff
	// Clock is the time source; nil means the real clock.
	Clock Clock
	// Rand returns numbers in [0, 1) for jitter; nil means math/rand/v2.
	Rand func() float64
	// Logger receives events; nil means discard.
	Logger *slog.Logger
	// Hooks receive metrics events; zero means none.
	Hooks Hooks
}

// Hooks are called on events worth a metric. Each may be nil; they must not
// block.
type Hooks struct {
	// OnFetch is called after every attempt with the URL, the result (ResultOK,
	// ResultNotModified or a crl.Kind label) and the time taken.
	OnFetch func(url, result string, took time.Duration)
	// OnPublish is called with every new snapshot.
	OnPublish func(*crl.Snapshot)
	// OnSaveFailed is called when a CRL could not be written to disk, with
	// the URL and what was written: SavedRecord or SavedKept.
	OnSaveFailed func(url, what string)
	// OnHousekeepingFailed is called when tidying the state directory
	// failed, with where (a URL, or a file) and what (HousekeepTouch,
	// ...): nothing in force is lost (see HousekeepTouch).
	OnHousekeepingFailed func(where, what string)
}

// What failed to be written, as passed to Hooks.OnSaveFailed.
const (
	// SavedRecord is a distribution point's own record of its CRL.
	SavedRecord = "record"
	// SavedKept is a CRL kept per issuer and partition (kept/).
	SavedKept = "kept"
)

type source struct {
	url     string
	derived bool
	// retired reports a URL a reload removed whose last CRL stays in force
	// until a configured source supersedes it (reconfigure.go); it is not
	// fetched.
	retired bool
	// displaced reports a retired source that holds the CRL a distribution
	// point gave before it gave a CRL of another issuer or partition
	// (fetchOne): still configured, but no longer giving this CRL.
	displaced bool
	// unlisted reports a URL a reload removed that stays fetched as one
	// learnt from certificates (useCertificateCdps, reconfigure.go): a
	// restart forgets such URLs, so its CRL is kept on disk as a retired
	// one's is (keepRetired).
	unlisted bool
	// learnt reports a URL learnt from a certificate (AddDerived), not
	// from a trusted CA's own distribution points: a restart forgets it,
	// so its CRL, when the newest of its partition, is kept on disk as a
	// retired one's is (keepSource). After a restart, a kept CRL loaded
	// from there that came from such a URL.
	learnt bool

	idx *crl.Index // last good; nil if none
	// saved reports that idx is on disk: the URL's record, or for a
	// displaced source the kept CRL of its issuer and partition.
	saved bool
	// inRecord reports a displaced source whose CRL only the URL's record
	// holds so far (kept.go).
	inRecord bool
	// retiredKept reports a retired source whose CRL is kept on disk
	// (kept/) as the newest of its issuer and partition (keepRetired), or,
	// after a restart, one loaded from there (displaced too, so never
	// fetched).
	retiredKept bool
	// file is the file that keeps a floor found at the start (loadFloors)
	// when it could not be copied to kept/: its URL's own record.
	file string
	// unsaved is the record of idx when writing it failed (saveRecord),
	// written again at each attempt until it is; nil when on disk.
	unsaved *store.Record
	// saveErr is why the last write of this source's CRL to disk (its
	// URL's record, or its kept copy) failed; nil after a success.
	saveErr    error
	validators fetch.Validators
	checkedAt  time.Time
	failures   int
	lastErr    error
	next       time.Time
	stale      bool // as last published
}

// Refresher keeps the CRLs current. Create it with New; it is safe for
// concurrent use.
type Refresher struct {
	cfg   Config
	clock Clock
	rnd   func() float64
	log   *slog.Logger
	fetch *fetch.Fetcher

	cycleMu sync.Mutex // one fetch cycle at a time

	mu      sync.Mutex
	sources []*source
	version uint64
	lastSig []sigEntry
	subs    map[chan *crl.Snapshot]struct{}
	kick    chan struct{}
	started bool
	set     crl.Set
	// limitLogged reports that the MaxDerived warning was logged.
	limitLogged bool
	// keptFullLogged reports that the MaxKept warning was logged.
	keptFullLogged bool
	// kept is what the store keeps per issuer and partition (kept.go).
	kept map[pair]crl.Meta
	// housekeeping is the state directory's housekeeping that failed
	// (housekeeping.go).
	housekeeping HousekeepingStatus
}

type sigEntry struct {
	idx   *crl.Index
	stale bool
}

// New validates cfg and returns a Refresher. It does no I/O.
func New(cfg Config) (*Refresher, error) {
	if cfg.Trusted == nil {
		return nil, errors.New("crl: refresher needs the trusted CA certificates")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MaxKept <= 0 {
		cfg.MaxKept = MaxKept
	}
	r := &Refresher{
		cfg:   cfg,
		clock: cfg.Clock,
		rnd:   cfg.Rand,
		log:   cfg.Logger,
		fetch: cfg.Fetcher,
		subs:  map[chan *crl.Snapshot]struct{}{},
		kept:  map[pair]crl.Meta{},
		kick:  make(chan struct{}, 1),
	}
	if r.clock == nil {
		r.clock = realClock{}
	}
	if r.rnd == nil {
		r.rnd = rand.Float64
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.fetch == nil {
		r.fetch = &fetch.Fetcher{}
	}
	var errs []error
	seen := map[string]bool{}
	for _, u := range cfg.URLs {
		if err := fetch.CheckURL(u); err != nil {
			errs = append(errs, err)
			continue
		}
		if !seen[u] {
			seen[u] = true
			r.sources = append(r.sources, &source{url: u})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// Set returns the set holding the current snapshot, for in-process lookups.
func (r *Refresher) Set() *crl.Set { return &r.set }

// Snapshot returns the current snapshot; nil before StartupFetch.
func (r *Refresher) Snapshot() *crl.Snapshot { return r.set.Load() }

// Subscribe returns a channel that receives the current snapshot (if any)
// and then every new one. A slow reader misses intermediate snapshots but
// always gets the latest. cancel stops the subscription and closes the
// channel.
func (r *Refresher) Subscribe() (snaps <-chan *crl.Snapshot, cancel func()) {
	ch := make(chan *crl.Snapshot, 1)
	r.mu.Lock()
	r.subs[ch] = struct{}{}
	if s := r.set.Load(); s != nil {
		ch <- s
	}
	r.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			r.mu.Lock()
			delete(r.subs, ch)
			close(ch)
			r.mu.Unlock()
		})
	}
}

// StartupFetch loads the stored CRLs, then fetches every URL once and
// publishes the first snapshot. With FailHard it returns an error naming each
// configured URL that could be neither fetched nor loaded, with the cause;
// otherwise such URLs are logged and retried by Run.
func (r *Refresher) StartupFetch(ctx context.Context) error {
	r.mu.Lock()
	if r.cfg.DeriveFromCAs {
		if n := r.addDerivedLocked(CertificateCDPs(r.cfg.Trusted()...), false); n > 0 {
			r.log.Info("crl distribution points derived from trusted CAs", "count", n)
		}
	}
	sources := r.active()
	r.mu.Unlock()

	r.cycleMu.Lock()
	defer r.cycleMu.Unlock()
	r.loadKept()
	for _, s := range sources {
		r.loadStored(s)
	}
	r.loadFloors()
	r.fetchAll(ctx, sources)
	if err := ctx.Err(); err != nil && r.cfg.FailHard {
		return fmt.Errorf("crl: startup fetch: %w", err)
	}

	var errs []error
	r.mu.Lock()
	for _, s := range sources {
		if s.idx != nil || s.lastErr == nil {
			continue
		}
		if r.cfg.FailHard && !s.derived {
			errs = append(errs, s.lastErr)
		} else {
			r.log.Warn("crl not available at startup; starting without it and retrying",
				"url", s.url, "err", s.lastErr, "next_attempt", s.next)
		}
	}
	r.started = true
	r.mu.Unlock()
	r.publish(true)
	if len(errs) > 0 {
		return fmt.Errorf("crl: startup fetch failed and no stored copy exists (fail.hard.on.crl.download.failure.during.server.startup is true; fix the distribution point or set it to false to start without it): %w", errors.Join(errs...))
	}
	return nil
}

// loadStored puts the stored CRL of s in force, re-verified.
func (r *Refresher) loadStored(s *source) {
	if r.cfg.Store == nil {
		return
	}
	rec, err := r.cfg.Store.Load(s.url)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.log.Warn("crl stored copy unreadable; ignoring it", "url", s.url, "err", err)
		}
		return
	}
	idx, err := r.accept(rec.DER, s.url, rec.FetchedAt)
	if err != nil {
		r.log.Warn("crl stored copy rejected; ignoring it", "url", s.url, "err", err)
		return
	}
	r.mu.Lock()
	s.idx, s.saved = idx, true
	s.validators = rec.Validators
	s.checkedAt = rec.FetchedAt
	r.mu.Unlock()
	r.log.Info("crl loaded from disk", "url", s.url, "issuer", idx.Meta().Issuer,
		"entries", idx.Len(), "this_update", idx.Meta().ThisUpdate, "next_update", idx.Meta().NextUpdate)
}

// accept parses and verifies der.
func (r *Refresher) accept(der []byte, url string, fetchedAt time.Time) (*crl.Index, error) {
	c, err := crl.Parse(der)
	if err != nil {
		return nil, crl.WithURL(err, url)
	}
	signer, err := c.Verify(r.cfg.Trusted())
	if err != nil {
		return nil, crl.WithURL(err, url)
	}
	return c.Index(signer, url, fetchedAt), nil
}

// RefreshNow fetches every URL at once and publishes any change.
func (r *Refresher) RefreshNow(ctx context.Context) {
	r.mu.Lock()
	sources := r.active()
	r.mu.Unlock()
	r.cycleMu.Lock()
	r.fetchAll(ctx, sources)
	r.cycleMu.Unlock()
	r.publish(false)
}

// Run refreshes on the timer until ctx ends, then returns nil. It calls
// StartupFetch first if that has not run (ignoring FailHard).
func (r *Refresher) Run(ctx context.Context) error {
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	if !started {
		_ = r.StartupFetch(ctx)
	}
	for {
		now := r.clock.Now()
		r.mu.Lock()
		var due []*source
		wake := time.Time{}
		for _, s := range r.sources {
			if !s.retired && !s.next.After(now) {
				due = append(due, s)
				continue
			}
			if !s.retired {
				wake = earliest(wake, s.next)
			}
			if s.idx != nil && !s.stale {
				if nu := s.idx.Meta().NextUpdate; !nu.IsZero() {
					wake = earliest(wake, nu.Add(time.Second))
				}
			}
		}
		interval := r.cfg.Interval
		r.mu.Unlock()
		if len(due) > 0 {
			r.cycleMu.Lock()
			r.fetchAll(ctx, due)
			r.cycleMu.Unlock()
			r.publish(false)
			continue
		}
		r.publish(false) // stale transitions
		if wake.IsZero() {
			wake = now.Add(interval)
		}
		c, stop := r.clock.After(wake.Sub(now))
		select {
		case <-ctx.Done():
			stop()
			return nil
		case <-c:
		case <-r.kick:
			stop()
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// fetchAll fetches the given sources concurrently. cycleMu is held.
func (r *Refresher) fetchAll(ctx context.Context, sources []*source) {
	var wg sync.WaitGroup
	for _, s := range sources {
		wg.Go(func() { r.fetchOne(ctx, s) })
	}
	wg.Wait()
}

// fetchOne runs one attempt for s, puts its result in force (commit) and
// schedules the next.
func (r *Refresher) fetchOne(ctx context.Context, s *source) {
	start := r.clock.Now()
	r.mu.Lock()
	cur, v := s.idx, s.validators
	r.mu.Unlock()
	if cur == nil {
		v = fetch.Validators{} // nothing to keep on a 304
	}
	result, got, newV, err := r.guardedAttempt(ctx, s.url, cur, v)
	now := r.clock.Now()
	r.mu.Lock()
	if err == nil && got.idx != nil {
		// Checked here, not in attempt: a fetch of another URL in the same
		// cycle may have displaced a newer CRL of this partition meanwhile.
		if err = r.olderThanDisplaced(s.url, got.idx); err != nil {
			result = kindLabel(err)
		}
	}
	if perr := r.guardedCommit(ctx, s, cur, got, newV, err, now); perr != nil {
		result = kindLabel(perr)
	}
	r.mu.Unlock()
	if h := r.cfg.Hooks.OnFetch; h != nil {
		h(s.url, result, now.Sub(start))
	}
}

// displace keeps cur, the CRL s gave until it gave next of another issuer
// or partition, in force as a retired source of the same URL: dropping it
// would un-revoke what only it lists (a partition, or a CRL of another
// scope, served at the full CRL's URL), or leave the certificates it
// covers judged by a CRL that does not cover them. It goes when a fetched
// CRL of its issuer and partition at least as new supersedes it
// (dropSuperseded); one per issuer and partition is kept, the newest. It is
// kept on disk too (saveKept, kept.go), so a restart puts it in force
// again. Meanwhile it goes stale like any other, and the role's /readyz
// notes and /status name the URL. r.mu is held.
func (r *Refresher) displace(s *source, cur, next *crl.Index) {
	m := cur.Meta()
	same := func(o *source) bool {
		return o.displaced && o.idx.Key() == m.Key && o.idx.Meta().Partition == m.Partition
	}
	// One displaced CRL per issuer and partition, the newest: CRLs replayed
	// in turn at a URL must not pile up.
	for _, o := range r.sources {
		if same(o) && crl.Compare(o.idx.Meta(), m) >= 0 {
			return
		}
	}
	r.sources = slices.DeleteFunc(r.sources, same)
	r.sources = append(r.sources, &source{url: s.url, retired: true, displaced: true, idx: cur, checkedAt: s.checkedAt, inRecord: s.saved, unsaved: s.unsaved})
	n := next.Meta()
	r.log.Warn("crl distribution point now gives a CRL of another issuer or partition; the CRL it gave before stays in force until a newer one of its issuer and partition arrives",
		"url", s.url, "issuer", m.Issuer, "partition", m.Partition, "received_issuer", n.Issuer, "received_partition", n.Partition,
		"next_update", m.NextUpdate)
}

// fetched is a new CRL an attempt got: its index and its DER.
type fetched struct {
	idx *crl.Index
	der []byte
}

// attempt downloads and checks one CRL. It returns the result label, the
// new CRL when it changed (zero when it did not) and the validators for
// the next request. It neither changes what is in force nor writes to disk:
// commit does.
func (r *Refresher) attempt(ctx context.Context, url string, cur *crl.Index, v fetch.Validators) (string, fetched, fetch.Validators, error) {
	res, err := r.fetch.Fetch(ctx, url, v)
	if err != nil {
		return kindLabel(err), fetched{}, v, err
	}
	if res.NotModified {
		return ResultNotModified, fetched{}, res.Validators, nil
	}
	idx, err := r.accept(res.Body, url, r.clock.Now())
	if err != nil {
		return kindLabel(err), fetched{}, v, err
	}
	if cur != nil && cur.Key() == idx.Key() && cur.Meta().Partition == idx.Meta().Partition {
		switch c := crl.Compare(idx.Meta(), cur.Meta()); {
		case c < 0:
			err := &crl.Error{URL: url, Kind: crl.KindOlder, Issuer: idx.Meta().Issuer,
				Err: fmt.Errorf("received number %v thisUpdate %s, in force number %v thisUpdate %s",
					idx.Meta().Number, idx.Meta().ThisUpdate.Format(time.RFC3339), cur.Meta().Number, cur.Meta().ThisUpdate.Format(time.RFC3339))}
			return kindLabel(err), fetched{}, v, err
		case c == 0:
			return ResultNotModified, fetched{}, res.Validators, nil
		}
	}
	der, _ := crl.Decode(res.Body) // Parse succeeded, so Decode does
	return ResultOK, fetched{idx: idx, der: der}, res.Validators, nil
}

func kindLabel(err error) string {
	var e *crl.Error
	if errors.As(err, &e) {
		return e.Kind.String()
	}
	return crl.KindFetch.String()
}
