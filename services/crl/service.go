package crl

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/grpc"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
	"github.com/segmesh/segmesh/pkg/crl/refresh"
	"github.com/segmesh/segmesh/pkg/crl/store"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/telemetry"
	"github.com/segmesh/segmesh/pkg/trust"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// Option changes how New builds the Service (tests, diagnose).
type Option func(*options)

type options struct {
	cfg     *Config
	trusted func() []*x509.Certificate
	clock   refresh.Clock
	fetcher *fetch.Fetcher
}

// WithConfig replaces the configuration derived from deps.Config.
func WithConfig(c Config) Option { return func(o *options) { o.cfg = &c } }

// WithTrusted replaces the trust store loaded at Start with trusted.
func WithTrusted(trusted func() []*x509.Certificate) Option {
	return func(o *options) { o.trusted = trusted }
}

// WithClock replaces the real clock of the refresh timer.
func WithClock(c refresh.Clock) Option { return func(o *options) { o.clock = c } }

// WithFetcher replaces the HTTP fetcher.
func WithFetcher(f *fetch.Fetcher) Option { return func(o *options) { o.fetcher = f } }

// Service is the crl role.
type Service struct {
	cfg       Config
	log       *slog.Logger
	refresher *refresh.Refresher
	trusted   func() []*x509.Certificate
	ownTrust  bool // trusted reads the trust store Start loads
	reloader  atomic.Pointer[trust.Reloader]
	// base makes snapshot versions distinct across restarts, so an edge that
	// reconnects with the version it holds is never mistaken as current by a
	// restarted role whose own count started again: wire version = base +
	// refresher version.
	base uint64

	fetches metric.Int64Counter
	unsaved metric.Int64Counter
	// panics counts the CRL fetches that panicked, which the refresher
	// logged with their stacks (segmesh_background_panics).
	panics *telemetry.PanicReport

	msgMu sync.Mutex
	msg   *crlv1.WatchSnapshotsResponse   // built once per snapshot
	parts []*crlv1.WatchSnapshotsResponse // built once per snapshot
	// packedParts are parts with packed_serials, likewise.
	packedParts []*crlv1.WatchSnapshotsResponse

	mu      sync.Mutex
	started bool
	stopped chan struct{} // closed by Stop: ends every stream
	// emptyAtStart reports that the state directory held no CRL when Start
	// began (statedir.go).
	emptyAtStart atomic.Bool
	cancel       context.CancelFunc
	wg           sync.WaitGroup
}

// New builds the crl role from deps. It does no I/O.
func New(deps role.Deps, opts ...Option) (*Service, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	var cfg Config
	if o.cfg != nil {
		cfg = *o.cfg
	} else {
		if deps.Config == nil {
			return nil, errors.New("crl: no configuration")
		}
		cfg = ConfigFrom(deps.Config)
	}
	if err := config.ErrorOf(deps.Config.FilePath(), cfg.problems()); err != nil {
		return nil, fmt.Errorf("crl: %w", err)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	meter := deps.Meter
	if meter == nil {
		meter = metricnoop.NewMeterProvider().Meter("crl")
	}
	s := &Service{
		cfg:     cfg,
		log:     log,
		trusted: o.trusted,
		base:    uint64(time.Now().UnixNano()),
		stopped: make(chan struct{}),
	}
	if s.trusted == nil {
		s.trusted, s.ownTrust = s.trustedFromStore, true
	}
	rc := refresh.Config{
		Interval:          cfg.Interval,
		FailHard:          cfg.FailHard,
		FailClosedOnStale: cfg.FailClosedOnStale,
		Trusted:           func() []*x509.Certificate { return s.trusted() },
		DeriveFromCAs:     cfg.UseCertificateCDPs,
		Fetcher:           o.fetcher,
		Clock:             o.clock,
		Logger:            log,
		Hooks:             refresh.Hooks{OnFetch: s.onFetch, OnSaveFailed: s.onSaveFailed, OnHousekeepingFailed: s.onSaveFailed},
	}
	if cfg.Enabled {
		rc.URLs = cfg.URLs
		if cfg.StateDir != "" {
			rc.Store = store.New(cfg.StateDir)
		}
	} else {
		rc.DeriveFromCAs = false
	}
	var err error
	if s.refresher, err = refresh.New(rc); err != nil {
		return nil, err
	}
	if err := s.metrics(meter); err != nil {
		return nil, fmt.Errorf("crl: metrics: %w", err)
	}
	if deps.Status != nil {
		deps.Status.Publish(role.CRL, s.statusSection)
	}
	return s, nil
}

// Constructor adapts New to role.Constructor.
func Constructor(deps role.Deps) (role.Role, error) { return New(deps) }

// Name returns "crl".
func (s *Service) Name() string { return role.CRL }

// RegisterGRPC registers RevocationService.
func (s *Service) RegisterGRPC(r grpc.ServiceRegistrar) {
	crlv1.RegisterRevocationServiceServer(r, server{svc: s})
}

// Start loads the trust store, then the stored CRLs, and fetches every
// distribution point once. With fail.hard.on.crl.download.failure.during.server.startup
// true, a distribution point with neither a download nor a stored copy fails
// the start with its URL and the cause; with false it is logged and retried.
// The refresh timer then runs until Stop.
func (s *Service) Start(ctx context.Context) error {
	if !s.cfg.Enabled {
		s.log.Info("revocation checking off: the crl role serves an empty snapshot",
			"setting", "enable.cert.revocation.validation", "honoured_with", "kcd.enabled or requireClientCertificate")
	} else if s.ownTrust && s.reloader.Load() == nil {
		spec, err := s.cfg.trustSpec()
		if err != nil {
			return fmt.Errorf("crl: %w", err)
		}
		r, err := trust.NewReloader(trust.ReloaderOptions{Spec: spec, Logger: s.log})
		if err != nil {
			return fmt.Errorf("crl: load the client certificate trust store: %w", err)
		}
		if r.Store().Empty() {
			s.log.Warn("no trusted CA: every CRL will be refused as untrusted", "setting", trust.KeyPath)
		}
		s.reloader.Store(r)
	}
	if s.cfg.Enabled && s.cfg.StateDir != "" {
		s.warnEmptyStateDir()
	}
	if err := s.refresher.StartupFetch(ctx); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.mu.Lock()
	s.cancel = cancel
	s.started = true
	s.mu.Unlock()
	if s.cfg.Enabled {
		s.wg.Go(func() { _ = s.refresher.Run(runCtx) })
		if r := s.reloader.Load(); r != nil {
			s.wg.Go(func() { _ = r.Run(runCtx) })
		}
	}
	snap := s.refresher.Snapshot()
	s.log.Info("crl role started", "issuers", len(snap.Indexes()), "snapshot_version", s.base+snap.Version())
	return nil
}

// trustedFromStore returns the trust store's certificates; none before Start.
func (s *Service) trustedFromStore() []*x509.Certificate {
	r := s.reloader.Load()
	if r == nil {
		return nil
	}
	return r.Store().Certificates()
}

// Ready returns nil once Start has fetched (or loaded) a CRL for every
// configured distribution point. A replica still missing one (started with
// fail-hard off while the CDP is down) is not ready, with the URLs named, so
// Kubernetes sends new edge streams to a replica that knows more; it still
// serves what it has, and an edge never drops an issuer it holds because a
// snapshot lacks it.
func (s *Service) Ready(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.stopped:
		return errors.New("crl: stopping")
	default:
	}
	if !s.started {
		return errors.New("crl: startup fetch not done")
	}
	if !s.cfg.Enabled {
		return nil
	}
	if err := s.refresher.Ready(); err != nil {
		return fmt.Errorf("%w; the role serves the CRLs it has and retries", err)
	}
	return nil
}

// Notes implements role.Noter: the states /readyz shows while the role is
// ready. A CRL kept from a distribution point a reload removed ("retired"),
// or that a distribution point gave before it gave one of another issuer or
// partition ("displaced"), is never fetched again, so it goes stale by
// itself; a stale CRL served under fail-open is accepted by the operator's
// choice; a distribution point now serving a CRL segmesh refuses as
// unsupported keeps its last good one. Both are named with
// the setting that ends them; /status and segmesh_crl_stale carry the same.
func (s *Service) Notes() []string {
	if s.refresher == nil || !s.cfg.Enabled {
		return nil
	}
	var out []string
	for _, st := range s.refresher.Status() {
		switch {
		case st.Displaced:
			out = append(out, fmt.Sprintf("CRL of %q (%s) that %s gave before it gave a CRL of another issuer or partition is kept in force%s, and not fetched again (stale after %s): serve that CRL, or a newer one, at a distribution point in %s%s",
				st.Issuer, partitionText(st.Partition), st.URL, s.keptIn(st.KeptFile), st.NextUpdate.UTC().Format(time.RFC3339), config.KeyCRLURIs, dropKept(st.KeptFile)))
		case st.LearntKept:
			out = append(out, fmt.Sprintf("CRL of %q (%s) from %s, a distribution point learnt from a certificate, is the newest of its partition and kept in force%s (a restart forgets learnt distribution points), stale after %s: list a distribution point for this CA in %s%s",
				st.Issuer, partitionText(st.Partition), st.URL, s.keptIn(st.KeptFile), st.NextUpdate.UTC().Format(time.RFC3339), config.KeyCRLURIs, dropKept(st.KeptFile)))
		case st.RetiredKept:
			out = append(out, fmt.Sprintf("CRL of %q (%s) from %s, a distribution point a reload removed (or no longer configured at the start), is the newest of its partition and kept in force%s, and not fetched again (stale after %s): list a distribution point for this CA in %s%s",
				st.Issuer, partitionText(st.Partition), st.URL, s.keptIn(st.KeptFile), st.NextUpdate.UTC().Format(time.RFC3339), config.KeyCRLURIs, dropKept(st.KeptFile)))
		case st.Retired && st.SaveError != nil:
			// Its copy to kept/ failed: its distribution point's record
			// still holds it (unless that write failed too, which the save
			// note says), and a start reads that record as the floor of its
			// partition, so a restart keeps it: the safe side, but "restart
			// to drop it" was wrong (TestRetiredNoteWhenItsCopyFailed).
			out = append(out, fmt.Sprintf("CRL of %q (%s) from %s, a distribution point a reload removed, is kept in force and not fetched again (stale after %s), but could not be copied to the kept CRLs; a restart keeps it too while its distribution point's record holds it (the start reads that record as the floor of its partition): it goes when a distribution point listed in %s gives a CRL of its partition at least as new; to stop checking the CA, take it out of %s and restart; once the state directory is fixed it is kept on disk and this note names the file that drops it",
				st.Issuer, partitionText(st.Partition), st.URL, st.NextUpdate.UTC().Format(time.RFC3339), config.KeyCRLURIs, trust.KeyPath))
		case st.Retired:
			// Not kept on disk (not the newest of its partition, or no state
			// directory): a restart does forget it.
			out = append(out, fmt.Sprintf("CRL of %q from %s, a distribution point a reload removed, is kept in force and not fetched again (stale after %s): list a distribution point for this CA in %s, or restart to drop it",
				st.Issuer, st.URL, st.NextUpdate.UTC().Format(time.RFC3339), config.KeyCRLURIs))
		case st.Stale:
			out = append(out, fmt.Sprintf("CRL of %q from %s is past its nextUpdate (%s) and still served: check the distribution point (/status has its last error)",
				st.Issuer, st.URL, st.NextUpdate.UTC().Format(time.RFC3339)))
		}
		if st.SaveError != nil {
			out = append(out, saveNote(st))
		}
		var ce *crl.Error
		if errors.As(st.LastError, &ce) && ce.Kind == crl.KindOlder {
			// A CRL older than one of its issuer and partition in force: a
			// distribution point gone back, a lagging mirror, or a replay
			// of genuinely signed old CRLs. The newer one stays in force.
			out = append(out, fmt.Sprintf("%s now serves a CRL of %q older than the one of its partition in force, refused (%v): check the distribution point, or whoever sits on its HTTP path; the newer CRL stays in force",
				st.URL, ce.Issuer, ce.Err))
		}
		if errors.As(st.LastError, &ce) && ce.Kind == crl.KindUnsupported && st.Issuer != "" {
			// A CRL segmesh cannot apply correctly (RFC 5280 5.2.5: a delta
			// CRL, a reason partition, an authority revocation list, an
			// indirect CRL) is refused: the last good one stays in force,
			// and goes stale on its own nextUpdate. Ready already names a
			// configured URL that never gave a CRL.
			out = append(out, fmt.Sprintf("%s now serves a CRL segmesh cannot apply (%v); the CRL of %q it gave before stays in force until its nextUpdate (%s): list the URL of the issuer's full CRL, or of its partitions by distribution point, in %s",
				st.URL, ce.Err, st.Issuer, st.NextUpdate.UTC().Format(time.RFC3339), config.KeyCRLURIs))
		}
	}
	return out
}

// keptIn and dropKept name the file that keeps a displaced or retired CRL, for a
// note. Without one the note must not promise that a restart keeps it: an
// admin would restart believing it safe, and the restart could put an
// older CRL of its partition in force.
func (s *Service) keptIn(file string) string {
	switch {
	case file != "":
		return ", also across restarts (" + file + ")"
	case s.cfg.StateDir == "":
		return " in memory only (no state directory, so a restart forgets it)"
	}
	return " but is not among the kept CRLs on disk (writing it failed: see the log), so a restart finds it only if the distribution point's saved copy still holds it"
}

func dropKept(file string) string {
	if file == "" {
		return ""
	}
	return "; to drop it, remove " + file + " and restart"
}

// saveNote names a CRL that could not be written to the state directory:
// a restart while its distribution point is down may lack it, or put an
// older CRL of its partition in force. The next successful write ends it.
func saveNote(st refresh.SourceStatus) string {
	return fmt.Sprintf("the CRL of %q (%s) from %s could not be written to the state directory (%v): a restart may lack it, or put an older CRL of its partition in force; fix the directory %s names (space, permissions, a file in its way), the next successful write ends this note",
		st.Issuer, partitionText(st.Partition), st.URL, st.SaveError, KeyStateDir)
}

// partitionText names a CRL's scope for a note.
func partitionText(p string) string {
	if p == "" {
		return "every certificate of the issuer"
	}
	return "partition " + p
}

// Stop ends the refresh timer and every snapshot stream (edges reconnect to
// another replica or keep their last snapshot), then waits for the timer
// until ctx ends.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	select {
	case <-s.stopped:
	default:
		close(s.stopped)
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("crl: stop: %w", ctx.Err())
	}
}

// Snapshot returns the current revocation snapshot; nil before Start.
func (s *Service) Snapshot() *crl.Snapshot { return s.refresher.Snapshot() }

// wireVersion is the version edges see for snap.
func (s *Service) wireVersion(snap *crl.Snapshot) uint64 { return s.base + snap.Version() }

// Check answers for one certificate from the current snapshot, as
// crl.Snapshot.IsRevoked does, with the snapshot's wire version. The issuer
// is found by name and key id, else by name alone. With UseCertificateCDPs,
// the HTTP distribution points of a certificate a trusted CA signed are
// added for the next refresh.
func (s *Service) Check(cert *x509.Certificate) (revoked bool, info crl.Info, known bool, version uint64) {
	snap := s.refresher.Snapshot()
	if snap == nil {
		return false, crl.Info{}, false, 0
	}
	revoked, info, known = snap.IsRevoked(cert)
	if !known {
		revoked, info, known = snap.IsRevokedKey(crl.KeyOf(cert.RawIssuer, nil), cert)
	}
	if !known && s.cfg.Enabled && s.cfg.UseCertificateCDPs && s.signedByTrusted(cert) {
		if n := s.refresher.AddDerived(refresh.CertificateCDPs(cert)...); n > 0 {
			s.log.Info("crl distribution points learnt from a certificate", telemetry.AttrIssuer, cert.Issuer.String(), "count", n)
		}
	}
	return revoked, info, known, s.wireVersion(snap)
}

// signedByTrusted reports whether a trusted CA signed cert directly.
func (s *Service) signedByTrusted(cert *x509.Certificate) bool {
	for _, ca := range s.trusted() {
		if string(ca.RawSubject) == string(cert.RawIssuer) && cert.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

func (s *Service) onSaveFailed(url, what string) {
	s.unsaved.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String(telemetry.AttrURL, url), attribute.String(telemetry.AttrReason, what)))
}

func (s *Service) onFetch(url, result string, _ time.Duration) {
	s.fetches.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String(telemetry.AttrURL, url), attribute.String(telemetry.AttrResult, result)))
	if result == crl.KindPanic.String() {
		s.panics.Count(telemetry.TaskCRLFetch)
	}
}

// metrics registers the role's instruments: fetches by result, and per
// issuer the CRL's age, staleness and entries.
func (s *Service) metrics(meter metric.Meter) error {
	var err error
	if s.fetches, err = meter.Int64Counter(telemetry.MetricCRLFetches,
		metric.WithDescription("CRL download attempts by distribution point and result (ok, not_modified, fetch, too_large, malformed, unsupported, untrusted, signature, older, panic)")); err != nil {
		return err
	}
	if s.panics, err = telemetry.NewPanicReport(meter, s.log); err != nil {
		return err
	}
	if s.unsaved, err = meter.Int64Counter(telemetry.MetricCRLSaveFailures,
		metric.WithDescription("writes to the state directory that failed, by distribution point (or file) and what (reason: record, the URL's own copy of its CRL; kept, the copy kept per issuer and partition: a restart may lack them; touch, mark, remove_kept, remove_record: housekeeping, nothing lost)")); err != nil {
		return err
	}
	age, err := meter.Float64ObservableGauge(telemetry.MetricCRLAge,
		metric.WithDescription("seconds since the thisUpdate of the CRL in force, per issuer"), metric.WithUnit("s"))
	if err != nil {
		return err
	}
	stale, err := meter.Int64ObservableGauge(telemetry.MetricCRLStale,
		metric.WithDescription("1 when the CRL in force is past its nextUpdate (kept as last known good, or refusing with failClosedOnStale)"))
	if err != nil {
		return err
	}
	entries, err := meter.Int64ObservableGauge(telemetry.MetricCRLEntries,
		metric.WithDescription("revoked serials in the CRL in force, per issuer"))
	if err != nil {
		return err
	}
	unsaved, err := meter.Int64ObservableGauge(telemetry.MetricCRLUnsaved,
		metric.WithDescription("1 while the CRL in force from a distribution point could not be written to the state directory (its saveError on /status): a restart may lack it"))
	if err != nil {
		return err
	}
	empty, err := meter.Int64ObservableGauge(telemetry.MetricCRLStateDirEmptyAtStart,
		metric.WithDescription("1 when the state directory held no CRL at the start (a first start, or segmesh.crl.stateDir changed or its contents lost): no floor of an earlier run is in force; until the next start"))
	if err != nil {
		return err
	}
	version, err := meter.Int64ObservableGauge(telemetry.MetricCRLSnapshotVersion,
		metric.WithDescription("version of the snapshot served (the role's own count)"))
	if err != nil {
		return err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		now := time.Now()
		for _, st := range s.refresher.Status() {
			if st.Issuer == "" {
				continue
			}
			attrs := metric.WithAttributes(attribute.String(telemetry.AttrIssuer, st.Issuer), attribute.String(telemetry.AttrURL, st.URL),
				attribute.String(telemetry.AttrPartition, st.Partition))
			o.ObserveFloat64(age, now.Sub(st.ThisUpdate).Seconds(), attrs)
			v := int64(0)
			if st.Stale {
				v = 1
			}
			o.ObserveInt64(stale, v, attrs)
			o.ObserveInt64(entries, int64(st.Entries), attrs)
			v = 0
			if st.SaveError != nil {
				v = 1
			}
			o.ObserveInt64(unsaved, v, attrs)
		}
		o.ObserveInt64(version, int64(s.refresher.Snapshot().Version()))
		v := int64(0)
		if s.emptyAtStart.Load() {
			v = 1
		}
		o.ObserveInt64(empty, v)
		return nil
	}, age, stale, entries, unsaved, empty, version)
	return err
}

// sourceStatus is one distribution point on the status page.
type sourceStatus struct {
	URL         string    `json:"url"`
	Derived     bool      `json:"derived,omitempty"`
	Retired     bool      `json:"retired,omitempty"`     // removed by a reload, its last CRL kept in force
	Displaced   bool      `json:"displaced,omitempty"`   // the CRL the URL gave before one of another issuer or partition, kept in force
	RetiredKept bool      `json:"retiredKept,omitempty"` // retired, the newest CRL of its partition, kept on disk: a restart keeps it
	LearntKept  bool      `json:"learntKept,omitempty"`  // learnt from a certificate, the newest CRL of its partition, kept on disk: a restart keeps it
	SaveError   string    `json:"saveError,omitempty"`   // why the last write of its CRL to the state directory failed
	KeptFile    string    `json:"keptFile,omitempty"`    // the file keeping a displaced or retired CRL across restarts
	Partition   string    `json:"partition,omitempty"`   // the CRL's scope: the distribution point it covers
	Issuer      string    `json:"issuer,omitempty"`
	Entries     int       `json:"entries"`
	CRLNumber   string    `json:"crlNumber,omitempty"`
	ThisUpdate  time.Time `json:"thisUpdate,omitzero"`
	NextUpdate  time.Time `json:"nextUpdate,omitzero"`
	FetchedAt   time.Time `json:"fetchedAt,omitzero"`
	CheckedAt   time.Time `json:"checkedAt,omitzero"`
	Stale       bool      `json:"stale"`
	Failures    int       `json:"failures"`
	LastError   string    `json:"lastError,omitempty"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
}

// statusSection is the role's section of the admin status page.
func (s *Service) statusSection() any {
	snap := s.refresher.Snapshot()
	out := struct {
		Enabled           bool           `json:"enabled"`
		SnapshotVersion   uint64         `json:"snapshotVersion"`
		Interval          string         `json:"interval"`
		FailHard          bool           `json:"failHard"`
		FailClosedOnStale bool           `json:"failClosedOnStale"`
		Sources           []sourceStatus `json:"sources"`
		// Housekeeping is the state directory's housekeeping that failed
		// since the start (refresh.HousekeepTouch ...): nothing lost.
		Housekeeping *housekeepingStatus `json:"stateDirHousekeeping,omitempty"`
		// EmptyAtStart: the state directory held no CRL at the start (a
		// first start, or segmesh.crl.stateDir changed or lost).
		EmptyAtStart bool `json:"stateDirEmptyAtStart,omitempty"`
	}{
		Enabled: s.cfg.Enabled, SnapshotVersion: snap.Version(), Interval: s.refresher.Interval().String(),
		FailHard: s.cfg.FailHard, FailClosedOnStale: s.cfg.FailClosedOnStale, EmptyAtStart: s.emptyAtStart.Load(),
	}
	for _, st := range s.refresher.Status() {
		ss := sourceStatus{URL: st.URL, Derived: st.Derived, Retired: st.Retired, Displaced: st.Displaced, RetiredKept: st.RetiredKept, LearntKept: st.LearntKept, KeptFile: st.KeptFile, Partition: st.Partition,
			Issuer: st.Issuer, Entries: st.Entries, CRLNumber: st.Number,
			ThisUpdate: st.ThisUpdate, NextUpdate: st.NextUpdate, FetchedAt: st.FetchedAt, CheckedAt: st.CheckedAt,
			Stale: st.Stale, Failures: st.Failures, NextAttempt: st.NextAttempt}
		if st.LastError != nil {
			ss.LastError = st.LastError.Error()
		}
		if st.SaveError != nil {
			ss.SaveError = st.SaveError.Error()
		}
		out.Sources = append(out.Sources, ss)
	}
	if h := s.refresher.Housekeeping(); h.LastError != nil {
		out.Housekeeping = &housekeepingStatus{Failures: h.Failures, LastError: h.LastError.Error(), LastAt: h.LastAt}
	}
	return out
}

// housekeepingStatus is the state directory's housekeeping that failed,
// on the status page.
type housekeepingStatus struct {
	Failures  map[string]int `json:"failures"` // by what: touch, mark, remove_kept, remove_record
	LastError string         `json:"lastError"`
	LastAt    time.Time      `json:"lastAt"`
}
