package identity

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"

	"github.com/segmesh/segmesh/pkg/certmap"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/flight"
	"github.com/segmesh/segmesh/pkg/refusal"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/telemetry"
	"github.com/segmesh/segmesh/pkg/upn"
	identityv1 "github.com/segmesh/segmesh/proto/segmesh/identity/v1"
)

// Option changes how New builds the Service (tests).
type Option func(*options)

type options struct {
	cfg  *Config
	now  func() time.Time
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// WithConfig replaces the configuration derived from deps.Config.
func WithConfig(c Config) Option { return func(o *options) { o.cfg = &c } }

// WithClock replaces time.Now (cache lifetimes, readiness interval).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithDialer opens the directory's TCP connections through dial.
func WithDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(o *options) { o.dial = dial }
}

// Service is the identity role.
type Service struct {
	cfg    Config
	opts   options
	log    *slog.Logger
	now    func() time.Time
	tracer trace.Tracer
	meter  metric.Meter
	realms *upn.Realms // nil when KCD is off; under mu

	requests metric.Int64Counter
	lookups  metric.Int64Counter
	latency  metric.Float64Histogram
	cache    metric.Int64Counter
	// panics logs and counts the panics of the shared directory lookups
	// (segmesh_background_panics), also those no call waits for any more.
	panics *telemetry.PanicReport

	mu         sync.Mutex
	applied    Config            // cfg, then the last configuration applied live
	generation uint64            // generationOf(applied), carried in every answer
	retired    []*certmap.Mapper // replaced by a reload, closed after retireGrace
	mapper     *certmap.Mapper   // set by Start when mapping is honoured
	resolver   *certmap.Resolver // set by Start when KCD is on
	checkErr   error             // last directory check
	checkedAt  time.Time

	// refusals remembers the directory's last refusal of a reload's bind
	// credentials (LDAP 49), not presented again for a while.
	refusals *refusal.Memory
}

// New builds the identity role from deps. It does no I/O: the LDAP CA file
// is read and the directory reached in Start.
func New(deps role.Deps, opts ...Option) (*Service, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	var cfg Config
	switch {
	case o.cfg != nil:
		cfg = *o.cfg
	case deps.Config != nil:
		cfg = ConfigFrom(deps.Config)
	default:
		return nil, errors.New("identity: no configuration")
	}
	if err := config.ErrorOf(deps.Config.FilePath(), cfg.problems()); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if cfg.ReadyInterval <= 0 {
		cfg.ReadyInterval = 5 * time.Second
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
		meter = metricnoop.NewMeterProvider().Meter("identity")
	}
	tracer := deps.Tracer
	if tracer == nil {
		tracer = tracenoop.NewTracerProvider().Tracer("identity")
	}
	s := &Service{cfg: cfg, opts: o, log: log, now: o.now, tracer: tracer, meter: meter,
		applied: cfg, generation: generationOf(cfg), refusals: refusal.New(refusal.DefaultWindow, o.now)}
	if cfg.KCDEnabled {
		r, err := upn.NewRealms(cfg.Domains, cfg.UPNSuffixRealms)
		if err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
		s.realms = r
	}
	var err error
	if s.requests, err = meter.Int64Counter(telemetry.MetricIdentityRequests,
		metric.WithDescription("MapCertificate calls by result and UPN source")); err != nil {
		return nil, err
	}
	if s.lookups, err = meter.Int64Counter(telemetry.MetricIdentityLDAPLookups,
		metric.WithDescription("directory lookups (cache misses) by outcome")); err != nil {
		return nil, err
	}
	if s.latency, err = meter.Float64Histogram(telemetry.MetricIdentityLDAPLookupSeconds,
		metric.WithDescription("directory lookup latency, bind and queueing included"), metric.WithUnit("s")); err != nil {
		return nil, err
	}
	if s.cache, err = meter.Int64Counter(telemetry.MetricIdentityCacheLookups,
		metric.WithDescription("mapping cache lookups by hit")); err != nil {
		return nil, err
	}
	if s.panics, err = telemetry.NewPanicReport(meter, log); err != nil {
		return nil, err
	}
	if deps.Status != nil {
		deps.Status.Publish(role.Identity, s.statusSection)
	}
	return s, nil
}

// Constructor adapts New to role.Constructor.
func Constructor(deps role.Deps) (role.Role, error) { return New(deps) }

// Name returns "identity".
func (s *Service) Name() string { return role.Identity }

// RegisterGRPC registers IdentityService.
func (s *Service) RegisterGRPC(r grpc.ServiceRegistrar) {
	identityv1.RegisterIdentityServiceServer(r, server{svc: s})
}

// Start reads the LDAP CA file, builds the mapping and checks the
// directory once. A refused bind (wrong DN or password) or an unreadable CA
// file stops the start; an unreachable directory leaves the role running
// but not ready, retried by Ready.
func (s *Service) Start(ctx context.Context) error {
	if !s.cfg.KCDEnabled {
		if s.cfg.MappingEnabled {
			s.log.Info("config setting ignored: certificate mapping needs KCD", "setting", "cert.mapping.enabled", "reason", "kcd.enabled is false")
		}
		s.log.Info("kcd disabled: the identity role maps no certificate", "setting", "kcd.enabled")
		return nil
	}
	parts, err := s.cfg.Build(s.buildOptions())
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	mapper, resolver := parts.Mapper, parts.Resolver
	s.mu.Lock()
	s.mapper, s.resolver, s.realms = mapper, resolver, parts.Realms
	s.mu.Unlock()
	if mapper == nil {
		s.log.Info("certificate mapping off: UPNs come from the certificate SAN", "setting", "cert.mapping.enabled")
		return nil
	}
	err = s.check(ctx)
	var be *certmap.BindError
	switch {
	case errors.As(err, &be):
		return fmt.Errorf("identity: %w", err)
	case err != nil:
		s.log.Warn("directory not reachable at start; certificates needing it are refused until it is", "ldap", mapper.Endpoint().String(), "err", err)
	default:
		s.log.Info("certificate mapping on", "ldap", mapper.Endpoint().String(), "base_dn", mapper.BaseDN())
	}
	return nil
}

// buildOptions are the role's BuildOptions: its clock, log, dialer and
// metric hooks.
func (s *Service) buildOptions() BuildOptions {
	return BuildOptions{
		Now: s.now, Logger: s.log, Dial: s.opts.dial,
		Hooks: certmap.Hooks{
			Lookup: func(o certmap.Outcome, d time.Duration) {
				attrs := metric.WithAttributes(attribute.String(telemetry.AttrResult, string(o)))
				s.lookups.Add(context.Background(), 1, attrs)
				s.latency.Record(context.Background(), d.Seconds(), attrs)
			},
			Cache: func(hit bool) {
				s.cache.Add(context.Background(), 1, metric.WithAttributes(attribute.Bool("hit", hit)))
			},
			Panic: func(p *flight.Panic) { s.panics.Report(telemetry.TaskDirectoryLookup, p.Value, p.Stack) },
		},
	}
}

// check asks the directory and remembers the answer for Ready.
func (s *Service) check(ctx context.Context) error {
	s.mu.Lock()
	m := s.mapper
	s.mu.Unlock()
	if m == nil {
		return nil
	}
	err := m.Check(ctx)
	s.mu.Lock()
	s.checkErr, s.checkedAt = err, s.now()
	s.mu.Unlock()
	return err
}

// Ready returns nil when certificates can be mapped: KCD off (nothing to
// map), mapping off, or the directory answered within ReadyInterval.
func (s *Service) Ready(ctx context.Context) error {
	s.mu.Lock()
	m, resolver, err, at := s.mapper, s.resolver, s.checkErr, s.checkedAt
	s.mu.Unlock()
	switch {
	case !s.cfg.KCDEnabled:
		return nil
	case resolver == nil:
		return errors.New("not started")
	case m == nil:
		return nil
	}
	if at.IsZero() || s.now().Sub(at) >= s.cfg.ReadyInterval {
		err = s.check(ctx)
	}
	if err != nil {
		return fmt.Errorf("directory %s: %w", m.Endpoint(), err)
	}
	return nil
}

// Stop closes the directory connections. MapCertificate calls in flight
// finish or fail with their own context.
func (s *Service) Stop(context.Context) error {
	s.mu.Lock()
	m, retired := s.mapper, slices.Clone(s.retired)
	s.mu.Unlock()
	for _, r := range retired {
		s.closeRetired(r)
	}
	if m != nil {
		return m.Close()
	}
	return nil
}

// errKCDOff is returned by Map while KCD is off.
var errKCDOff = errors.New("KCD is off (kcd.enabled is false): no certificate is mapped to a user")

// Map returns the user der, a verified client certificate, stands for.
// Errors are for toStatus: a *certmap.RefusedError, errKCDOff, an
// *InvalidCertificateError, or the context's error.
func (s *Service) Map(ctx context.Context, der []byte) (certmap.Identity, error) {
	id, _, err := s.mapGen(ctx, der)
	return id, err
}

// mapGen is Map with the mapping generation of the settings that gave the
// answer.
func (s *Service) mapGen(ctx context.Context, der []byte) (certmap.Identity, uint64, error) {
	ctx, span := s.tracer.Start(ctx, "identity.MapCertificate")
	defer span.End()
	id, gen, err := s.resolve(ctx, der)
	result, source := "ok", ""
	if err != nil {
		result = "refused"
		var re *certmap.RefusedError
		if errors.As(err, &re) && re.Unavailable {
			result = "unavailable"
		} else if !errors.As(err, &re) {
			result = "error"
		}
		span.SetStatus(codes.Error, err.Error())
	} else {
		source = id.Source.String()
		span.SetAttributes(attribute.String(telemetry.AttrUPN, id.UPN.String()), attribute.String(telemetry.AttrRealm, id.UPN.Realm),
			attribute.String("source", source), attribute.Bool("cached", id.Cached))
	}
	s.requests.Add(ctx, 1, metric.WithAttributes(attribute.String(telemetry.AttrResult, result), attribute.String("source", source)))
	return id, gen, err
}

// InvalidCertificateError is returned for bytes that are not a certificate.
type InvalidCertificateError struct{ Err error }

// Error implements error.
func (e *InvalidCertificateError) Error() string { return "certificate_der: " + e.Err.Error() }

// Unwrap returns the parse error.
func (e *InvalidCertificateError) Unwrap() error { return e.Err }

func (s *Service) resolve(ctx context.Context, der []byte) (certmap.Identity, uint64, error) {
	if !s.cfg.KCDEnabled {
		return certmap.Identity{}, 0, errKCDOff
	}
	s.mu.Lock()
	r, gen := s.resolver, s.generation
	s.mu.Unlock()
	if r == nil {
		return certmap.Identity{}, 0, errors.New("identity role not started")
	}
	if len(der) == 0 {
		return certmap.Identity{}, 0, &InvalidCertificateError{Err: errors.New("empty")}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return certmap.Identity{}, 0, &InvalidCertificateError{Err: err}
	}
	id, err := r.Resolve(ctx, cert)
	return id, gen, err
}

// statusSection is the identity role's part of the admin status page.
func (s *Service) statusSection() any {
	out := struct {
		KCD            bool     `json:"kcd"`
		Mapping        bool     `json:"mapping"`
		LDAP           string   `json:"ldap,omitempty"`
		BaseDN         string   `json:"base_dn,omitempty"`
		CacheEntries   int      `json:"cache_entries"`
		LastCheckError string   `json:"last_check_error,omitempty"`
		Realms         []string `json:"realms,omitempty"`
		Generation     uint64   `json:"mapping_generation"`
	}{KCD: s.cfg.KCDEnabled, Mapping: s.cfg.MappingHonoured()}
	s.mu.Lock()
	defer s.mu.Unlock()
	out.Generation = s.generation
	if s.realms != nil {
		out.Realms = s.realms.Domains()
	}
	if s.mapper != nil {
		out.LDAP, out.BaseDN, out.CacheEntries = s.mapper.Endpoint().String(), s.mapper.BaseDN(), s.mapper.CacheLen()
	}
	if s.checkErr != nil {
		out.LastCheckError = s.checkErr.Error()
	}
	return out
}
