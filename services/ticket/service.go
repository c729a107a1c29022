package ticket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/flight"
	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/krbhint"
	"github.com/segmesh/segmesh/pkg/refusal"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/s4u"
	"github.com/segmesh/segmesh/pkg/telemetry"
	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// Option changes how New builds the Service (tests, benchmarks).
type Option func(*options)

type options struct {
	exchanger kdc.Exchanger
	now       func() time.Time
	cfg       *Config
}

// WithExchanger sends KDC requests through x instead of a kdc.Transport to
// the configured domain controllers.
func WithExchanger(x kdc.Exchanger) Option { return func(o *options) { o.exchanger = x } }

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithConfig replaces the configuration derived from deps.Config.
func WithConfig(c Config) Option { return func(o *options) { o.cfg = &c } }

// Service is the ticket role.
type Service struct {
	// enabled is kcd.enabled at the start: it takes a restart.
	enabled bool
	// eng is the configuration in force with its S4U client; a reload
	// swaps it whole (reload.go).
	eng    atomic.Pointer[engine]
	opts   options
	log    *slog.Logger
	now    func() time.Time
	cache  *ticketCache
	tracer trace.Tracer

	requests  metric.Int64Counter
	exchanges metric.Int64Counter
	events    metric.Int64Counter
	renewals  metric.Int64Counter
	// panics logs and counts the panics of the shared KDC exchanges and
	// of the TGT refreshes (segmesh_background_panics).
	panics *telemetry.PanicReport

	mu      sync.Mutex
	tgtErr  error
	stop    context.CancelFunc
	renewWG sync.WaitGroup
	stopped bool
	// refusals remembers the KDC's last refusal of a reload's credentials.
	refusals *refusal.Memory
	// retiredWG waits for the background work of clients a reload replaced.
	retiredWG sync.WaitGroup
}

// engine is what one configuration of the role builds: its settings, the
// S4U client with the service account's TGTs, and the renewer over it.
// Immutable once stored.
type engine struct {
	cfg    Config
	client *s4u.Client // nil with KCD off
	renew  *renewer
	// retired are the SPNs reloads removed from kcd.targetSPN, each still
	// issued until its time (spnGrace after the reload) for the requests
	// that took it from the configuration before.
	retired map[string]time.Time
}

// engine returns the configuration in force.
func (s *Service) engine() *engine { return s.eng.Load() }

// New builds the ticket role from deps. It does no I/O.
func New(deps role.Deps, opts ...Option) (*Service, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	cfg := ConfigFrom(deps.Config)
	if o.cfg != nil {
		cfg = *o.cfg
	}
	if err := config.ErrorOf(deps.Config.FilePath(), cfg.problems()); err != nil {
		return nil, fmt.Errorf("ticket: %w", err)
	}
	if o.now == nil {
		o.now = time.Now
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	meter := deps.Meter
	if meter == nil {
		meter = metricnoop.NewMeterProvider().Meter("ticket")
	}
	tracer := deps.Tracer
	if tracer == nil {
		tracer = tracenoop.NewTracerProvider().Tracer("ticket")
	}
	s := &Service{enabled: cfg.Enabled, opts: o, log: log, now: o.now, tracer: tracer, tgtErr: errors.New("no TGT yet"),
		refusals: refusal.New(refusal.DefaultWindow, o.now)}
	var err error
	if s.requests, err = meter.Int64Counter(telemetry.MetricTicketRequests, metric.WithDescription("GetServiceTicket calls by result")); err != nil {
		return nil, err
	}
	if s.exchanges, err = meter.Int64Counter(telemetry.MetricTicketKDCExchanges, metric.WithDescription("KDC exchanges by stage, result and Kerberos error code")); err != nil {
		return nil, err
	}
	if s.events, err = meter.Int64Counter(telemetry.MetricTicketCacheEvents, metric.WithDescription("ticket cache hits, misses, refreshes and evictions")); err != nil {
		return nil, err
	}
	if s.renewals, err = meter.Int64Counter(telemetry.MetricTicketRenewals, metric.WithDescription("service ticket renewals tried, by result (ok, refused, error) and Kerberos error code")); err != nil {
		return nil, err
	}
	s.cache = newTicketCache(s.fetch, cfg, o.now, func(ev cacheEvent) {
		s.events.Add(context.Background(), 1, metric.WithAttributes(attribute.String("event", string(ev))))
	})
	// A panic of the shared KDC exchange reaches the gRPC calls waiting for
	// it; this logs and counts it also when none waits any more.
	if s.panics, err = telemetry.NewPanicReport(meter, log); err != nil {
		return nil, err
	}
	s.cache.sf.OnPanic = func(key string, p *flight.Panic) {
		user, spn, _ := strings.Cut(key, "\x00")
		s.panics.Report(telemetry.TaskTicketFetch, p.Value, p.Stack, telemetry.AttrUPN, user, telemetry.AttrSPN, spn)
	}
	eng, err := s.build(cfg, nil)
	if err != nil {
		return nil, err
	}
	s.eng.Store(eng)
	if !cfg.Enabled {
		return s, nil
	}
	if _, err := meter.Int64ObservableGauge(telemetry.MetricTicketCacheEntries, metric.WithDescription("entries in the ticket cache"),
		metric.WithInt64Callback(func(_ context.Context, ob metric.Int64Observer) error { ob.Observe(int64(s.cache.Len())); return nil })); err != nil {
		return nil, err
	}
	if _, err := meter.Float64ObservableGauge(telemetry.MetricTicketTGTAge, metric.WithDescription("age of the service account's TGT per realm"),
		metric.WithFloat64Callback(func(_ context.Context, ob metric.Float64Observer) error {
			for _, t := range s.engine().client.TGTs() {
				ob.Observe(s.now().Sub(t.AuthTime).Seconds(), metric.WithAttributes(attribute.String(telemetry.AttrRealm, t.Realm)))
			}
			return nil
		})); err != nil {
		return nil, err
	}
	if _, err := meter.Float64ObservableGauge(telemetry.MetricTicketTGTExpiry, metric.WithDescription("when the service account's TGT per realm ends (Unix seconds): minus time() is the lifetime left"),
		metric.WithFloat64Callback(func(_ context.Context, ob metric.Float64Observer) error {
			for _, t := range s.engine().client.TGTs() {
				ob.Observe(float64(t.EndTime.Unix()), metric.WithAttributes(attribute.String(telemetry.AttrRealm, t.Realm)))
			}
			return nil
		})); err != nil {
		return nil, err
	}
	if deps.Status != nil {
		deps.Status.Publish("ticket", s.statusSection)
	}
	return s, nil
}

// Constructor adapts New to role.Constructor.
func Constructor(deps role.Deps) (role.Role, error) { return New(deps) }

// Name returns "ticket".
func (s *Service) Name() string { return role.Ticket }

// RegisterGRPC registers TicketService.
func (s *Service) RegisterGRPC(r grpc.ServiceRegistrar) {
	ticketv1.RegisterTicketServiceServer(r, server{svc: s})
}

// Start gets the first TGT. A definitive refusal (wrong password, unknown
// service account) stops the start with the KDC's code and hint; an
// unreachable KDC leaves the role not ready and retrying.
func (s *Service) Start(ctx context.Context) error {
	if !s.enabled {
		s.log.Info("kcd disabled: the ticket role serves no tickets", "setting", "kcd.enabled")
		return nil
	}
	cfg := s.engine().cfg
	err := s.renewTGT(ctx)
	if err != nil && !s4u.IsTemporary(err) {
		return fmt.Errorf("service account %s@%s: %w", cfg.Service, cfg.Realm, err)
	}
	if err != nil {
		s.log.Warn("no TGT at start; retrying in the background", telemetry.AttrRealm, cfg.Realm, "err", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = cancel
	s.renewWG.Add(1)
	go s.renewLoop(rctx)
	return nil
}

// renewLoop keeps the primary realm's TGT fresh (s4u refreshes it ahead of
// expiry when asked) and retries quickly while there is none.
func (s *Service) renewLoop(ctx context.Context) {
	defer s.renewWG.Done()
	for {
		wait := 30 * time.Second
		s.mu.Lock()
		if s.tgtErr != nil {
			wait = 2 * time.Second
		}
		s.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := s.renewTGT(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("TGT renewal failed; the current TGT stays in use while valid", telemetry.AttrRealm, s.engine().cfg.Realm, "err", err)
		}
	}
}

func (s *Service) renewTGT(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	eng := s.engine()
	_, err := eng.client.TGT(ctx, eng.cfg.Realm)
	s.mu.Lock()
	if eng == s.engine() { // else a reload swapped in a client it proved
		s.tgtErr = err
	}
	s.mu.Unlock()
	return err
}

// Ready reports nil when KCD is off or a valid TGT for the primary realm is held.
func (s *Service) Ready(context.Context) error {
	if !s.enabled {
		return nil
	}
	eng := s.engine()
	for _, t := range eng.client.TGTs() {
		if t.Realm == eng.cfg.Realm && s.now().Before(t.EndTime) {
			return nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tgtErr != nil {
		return fmt.Errorf("no TGT for %s: %w", eng.cfg.Realm, s.tgtErr)
	}
	return fmt.Errorf("no TGT for %s", eng.cfg.Realm)
}

// Stop ends the renewal loop and waits for background refreshes.
func (s *Service) Stop(context.Context) error {
	if s.stop != nil {
		s.stop()
	}
	s.renewWG.Wait()
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.retiredWG.Wait()
	if c := s.engine().client; c != nil {
		c.Wait()
	}
	return nil
}

// Ticket returns a ticket to spn (the default target SPN when empty) for
// user, from the cache or the KDC. Errors are gRPC statuses.
func (s *Service) Ticket(ctx context.Context, user, spn string) (*s4u.Ticket, bool, error) {
	ctx, span := s.tracer.Start(ctx, "ticket.GetServiceTicket")
	defer span.End()
	if !s.enabled {
		return nil, false, status.Error(grpccodes.FailedPrecondition, "KCD is off (kcd.enabled is false): no tickets are issued")
	}
	eng := s.engine()
	cfg := eng.cfg
	if spn == "" {
		spn = cfg.SPNs[0]
	}
	canon, ok := eng.issuable(spn, s.now())
	if !ok {
		return nil, false, status.Errorf(grpccodes.PermissionDenied, "SPN %q is not a configured target SPN (kcd.targetSPN)", spn)
	}
	spn = canon
	span.SetAttributes(attribute.String(telemetry.AttrUPN, user), attribute.String(telemetry.AttrSPN, spn))
	t, cached, err := s.cache.Get(ctx, user, spn)
	result := "ok"
	if err != nil {
		result = "error"
		st := toStatus(err, cfg.Realm)
		attrs := []any{telemetry.AttrUPN, user, telemetry.AttrSPN, spn, "err", err}
		if d := DetailOf(st); d != nil && d.Code != 0 {
			attrs = append(attrs, telemetry.AttrKRBCode, d.Code)
		}
		if !cached {
			s.log.Warn("ticket refused", attrs...)
		}
		span.SetStatus(codes.Error, err.Error())
		s.requests.Add(ctx, 1, metric.WithAttributes(attribute.String(telemetry.AttrResult, result)))
		return nil, cached, st
	}
	if cached {
		result = "cache_hit"
	}
	s.requests.Add(ctx, 1, metric.WithAttributes(attribute.String(telemetry.AttrResult, result)))
	return t, cached, nil
}

// fetch is the cache's way to the KDC: a new pair, or the renewal of old.
func (s *Service) fetch(ctx context.Context, user, spn string, old *s4u.Ticket) (*s4u.Ticket, error) {
	return s.engine().renew.fetch(ctx, user, spn, old)
}

// onTGTPanic counts a panic of the background TGT refresh, which pkg/s4u
// logged with its stack and counts as a failed refresh.
func (s *Service) onTGTPanic(string, any, []byte) { s.panics.Count(telemetry.TaskTGTRefresh) }

func (s *Service) onExchange(stage s4u.Stage, realm string, err error) {
	code, result := "0", "ok"
	var ke *s4u.KDCError
	switch {
	case errors.As(err, &ke) && krbhint.NormalStep(stage, ke.Code):
		// The first round trip of every AS exchange, not a failure.
		code, result = strconv.Itoa(int(ke.Code)), "preauth_required"
	case errors.As(err, &ke):
		code, result = strconv.Itoa(int(ke.Code)), "krb_error"
	case err != nil:
		result = "error"
	}
	s.exchanges.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("stage", string(stage)), attribute.String(telemetry.AttrRealm, realm),
		attribute.String(telemetry.AttrResult, result), attribute.String(telemetry.AttrKRBCode, code)))
}

// statusSection is the ticket role's part of the admin status page.
func (s *Service) statusSection() any {
	type tgt struct {
		Realm     string    `json:"realm"`
		AuthTime  time.Time `json:"auth_time"`
		EndTime   time.Time `json:"end_time"`
		RefreshAt time.Time `json:"refresh_at"`
	}
	out := struct {
		CacheEntries int    `json:"cache_entries"`
		TGTs         []tgt  `json:"tgts"`
		LastTGTError string `json:"last_tgt_error,omitempty"`
		// RenewalsPausedUntil is set while the KDC refuses to renew
		// service tickets (Samba) and new pairs are made instead.
		RenewalsPausedUntil *time.Time `json:"renewals_paused_until,omitempty"`
	}{CacheEntries: s.cache.Len()}
	eng := s.engine()
	if until := eng.renew.paused(); !until.IsZero() {
		out.RenewalsPausedUntil = &until
	}
	for _, t := range eng.client.TGTs() {
		out.TGTs = append(out.TGTs, tgt{t.Realm, t.AuthTime, t.EndTime, t.RefreshAt})
	}
	s.mu.Lock()
	if s.tgtErr != nil {
		out.LastTGTError = s.tgtErr.Error()
	}
	s.mu.Unlock()
	return out
}
