package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/flight"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/telemetry"
	"github.com/segmesh/segmesh/pkg/trust"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// Service is the edge role. Build it with New; the Group drives its lifecycle.
type Service struct {
	// refusals feeds the status page's "recent refusals".
	refusals refusalLog

	cfg    *Config
	full   *config.Config
	conns  role.Conns
	log    *slog.Logger
	tracer trace.Tracer
	// tracing is false when tracer is the no-op tracer: ServeHTTP then
	// starts no span (noSpan).
	tracing bool
	now     func() time.Time
	opts    options

	metrics *metrics
	// panicReport logs and counts the panics of the shared role calls
	// (segmesh_background_panics), also those no device request waits for.
	panicReport *telemetry.PanicReport
	// panicLines writes the panics' log lines (reportPanic and
	// panicReport): values bounded, stacks rate-limited.
	panicLines *telemetry.PanicLog
	peers      peers
	revocation *revocation
	// spn is the Exchange SPN in force (kcd.targetSPN's first): a reload
	// swaps it (upstream_reload.go); a request keeps the one it began with.
	spn atomic.Pointer[string]

	// Set by Start.
	trust    trustSource
	reloader *trust.Reloader
	identity *identityCache
	tickets  *ticketCache
	// serverCert is the certificate new handshakes get (door_servercert.go).
	serverCert serverCert
	upstreams  *upstreams
	rproxy     *httputil.ReverseProxy
	srv        *http.Server
	ln         net.Listener
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	started    atomic.Bool
	stopping   atomic.Bool
	serveErr   atomic.Pointer[error]

	// listener serves new device connections and those parked Pings hand
	// back; parking tracks the parked Pings (upstream_park.go).
	listener *parkListener
	parking  *parking
	// relay is the edge's own HTTP/1.1 engine's connection pool
	// (engine_relay.go); nil when segmesh.edge.http1Engine is net/http.
	relay *relayPool
	// drain tracks the proxied Pings Stop answers (upstream_drain.go).
	drain pingDrain
	// fresh tracks the device connections whose first request has not
	// reached the handler (door_drain.go).
	fresh freshConns
	// refresh401 allows one fresh ticket per user per interval after a
	// 401 from Exchange (kcd_unauthorized.go).
	refresh401 *refreshGate
	// sessions are the TLS session ticket keys and the handshake counts
	// (door_tickets.go).
	sessions sessionTickets
}

// options replace dependencies in tests; zero values mean the real ones.
type options struct {
	identity   identityMapper
	tickets    ticketSource
	crl        crlv1.RevocationServiceClient
	negotiator negotiatorFactory
	now        func() time.Time
	// tune adjusts the derived configuration (short timeouts in tests).
	tune func(*Config)
	// snapshotWait overrides firstSnapshotWait.
	snapshotWait time.Duration
	// crlBackoff overrides the first reconnection delay of the crl stream.
	crlBackoff time.Duration
	// after replaces time.After for the drain grace and the spread of the
	// drained Pings' answers.
	after func(time.Duration) <-chan time.Time
	// shuffle replaces rand.Shuffle for the order of the drained Pings'
	// answers.
	shuffle func(n int, swap func(i, j int))
	// learnWait overrides cdpLearnWait.
	learnWait time.Duration
	// wrapTrust, when set, wraps the trust source Start builds (tests: a
	// trust source that panics on a device's chain).
	wrapTrust func(trustSource) trustSource
}

// New builds the edge from deps. It does no I/O: Start opens the listener.
func New(deps role.Deps) (role.Role, error) {
	return newService(deps, options{})
}

func newService(deps role.Deps, o options) (*Service, error) {
	cfg, err := newConfig(deps.Config)
	if err != nil {
		return nil, err
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tracer := deps.Tracer
	if tracer == nil {
		tracer = tracenoop.NewTracerProvider().Tracer("segmesh/edge")
	}
	// Parking exists from New on so the metrics' callback can read it
	// without racing Start.
	parked := newParking()
	m, err := newMetrics(deps.Meter, parked.counts)
	if err != nil {
		return nil, fmt.Errorf("edge: metrics: %w", err)
	}
	if o.now == nil {
		o.now = time.Now
	}
	// One rate for the stacks of every panic the edge logs (reportPanic,
	// the shared calls' and the revocation stream's).
	lines := telemetry.NewPanicLog(log, o.now)
	pr, err := telemetry.NewPanicReportTo(deps.Meter, lines)
	if err != nil {
		return nil, fmt.Errorf("edge: metrics: %w", err)
	}
	if o.tune != nil {
		o.tune(cfg)
	}
	if o.snapshotWait <= 0 {
		o.snapshotWait = firstSnapshotWait
	}
	if o.learnWait <= 0 {
		o.learnWait = cdpLearnWait
	}
	if o.negotiator == nil {
		o.negotiator = newNegotiatorFactory(o.now)
	}
	if cfg.KCD && o.identity == nil && o.tickets == nil && deps.Conns == nil {
		return nil, errors.New("edge: KCD is on but no connection to the identity and ticket roles was given")
	}
	s := &Service{
		cfg: cfg, full: deps.Config, conns: deps.Conns, log: log, tracer: tracer, tracing: !isNoopTracer(tracer), now: o.now, opts: o,
		metrics:     m,
		panicReport: pr,
		panicLines:  lines,
		parking:     parked,
		revocation:  newRevocation(cfg.CRL, log, o.now),
		refresh401:  newRefreshGate(cfg.UnauthorizedRefresh, cfg.CacheSize),
	}
	s.revocation.panics.report = pr
	if o.crlBackoff > 0 {
		s.revocation.minBackoff = o.crlBackoff
	}
	if err := s.revocation.registerMetrics(deps.Meter); err != nil {
		return nil, fmt.Errorf("edge: revocation metrics: %w", err)
	}
	s.sessions.now = o.now
	if err := s.sessions.registerMetrics(deps.Meter); err != nil {
		return nil, fmt.Errorf("edge: TLS session metrics: %w", err)
	}
	if deps.Status != nil {
		deps.Status.Publish(role.Edge, s.statusSection)
	}
	s.spn.Store(&cfg.TargetSPN)
	return s, nil
}

// targetSPN returns the Exchange SPN new requests ask tickets for.
func (s *Service) targetSPN() string { return *s.spn.Load() }

// statusSection is the edge's part of the admin status page.
func (s *Service) statusSection() any {
	st := map[string]any{
		"listen":              s.cfg.Listen,
		"kcd":                 s.cfg.KCD,
		"target_spn":          s.targetSPN(),
		"require_client_cert": s.cfg.RequireClientCert,
		"revocation":          s.cfg.Revocation,
		"paths":               s.cfg.Paths,
		"upstreams":           s.upstreamCount(),
	}
	if !s.started.Load() {
		st["state"] = "not started"
		return st
	}
	st["address"] = s.Addr().String()
	if s.cfg.Revocation {
		st["revocation"] = s.revocation.status()
	}
	if s.reloader != nil {
		store := s.reloader.Store()
		st["trust_source"] = store.Source()
		st["trust_loaded_at"] = store.LoadedAt()
	}
	if s.tickets != nil {
		st["cached_tickets"] = s.tickets.len()
	}
	if s.identity != nil {
		st["cached_identities"] = s.identity.len()
	}
	if s.parking != nil {
		st["parked_pings"], st["parked_pings_answered"] = s.parking.counts()
	}
	st["ping_fallbacks"] = s.metrics.fallbackCounts()
	st["http1_engine"] = "net/http"
	if s.relay != nil {
		st["http1_engine"], st["relay_requests"] = "relay", s.relay.sent.Load()
		st["relay_max_conns_per_host"], st["relay_busy_refused"] = s.relay.max, s.relay.busy.Load()
	}
	st["tls_sessions"] = s.sessions.status()
	st["recent_refusals"] = s.refusals.recent()
	return st
}

// ReloadTrust reloads the client-certificate trust store now (SIGHUP). On
// error the previous trust stays in force. Open connections are kept.
func (s *Service) ReloadTrust() error {
	if s.reloader == nil {
		return errors.New("edge: not started")
	}
	if err := s.reloader.Reload(); err != nil {
		return fmt.Errorf("edge: reload trust store (previous trust still in use): %w", err)
	}
	return nil
}

// Reload implements role.Reloader: SIGHUP re-reads the trust store.
func (s *Service) Reload(context.Context) error { return s.ReloadTrust() }

// Constructor adapts New to role.Constructor, like the other roles.
func Constructor(deps role.Deps) (role.Role, error) { return New(deps) }

// Name returns "edge".
func (s *Service) Name() string { return role.Edge }

// RegisterGRPC registers nothing: the edge has no gRPC API.
func (s *Service) RegisterGRPC(grpc.ServiceRegistrar) {}

// Addr returns the listener's address; nil before Start.
func (s *Service) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// firstSnapshotWait bounds how long Start waits for the first revocation
// snapshot; without one certificates are refused, so the edge reports not
// ready rather than failing.
const firstSnapshotWait = 5 * time.Second

// cdpLearnWait bounds how long a handshake whose issuer has no CRL waits for
// the crl role to fetch the distribution points it was told about.
const cdpLearnWait = 5 * time.Second

// Start loads the server certificate and the trust store, connects to the
// other roles, subscribes to revocation snapshots and opens the listener.
func (s *Service) Start(ctx context.Context) error {
	cert, err := loadServerCertificate(s.cfg, s.log, s.now())
	if err != nil {
		return err
	}
	if cert.Leaf != nil { // tls.LoadX509KeyPair, the PFX and the self-signed path all set it
		s.metrics.serverCertNotAfter.Store(cert.Leaf.NotAfter.Unix())
	}
	s.serverCert.p.Store(&cert)
	var keys *ticketKeySet
	if s.cfg.TicketKeyFile != "" {
		if keys, err = readTicketKeys(s.cfg.TicketKeyFile); err != nil {
			return fmt.Errorf("edge: %w", err)
		}
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	fail := func(err error) error { cancel(); s.wg.Wait(); return err }

	r, err := newTrust(s.full, s.log, s.now)
	if err != nil {
		return fail(err)
	}
	s.reloader, s.trust = r, reloaderTrust{r: r}
	if w := s.opts.wrapTrust; w != nil {
		s.trust = w(s.trust)
	}
	s.wg.Go(func() { _ = r.Run(bg) })
	if s.upstreams, err = s.newUpstreams(); err != nil {
		return fail(err)
	}
	if w := s.upstreams.watch; w != nil {
		s.wg.Go(func() { w.run(bg) })
	}
	s.rproxy = s.newProxy()
	if s.cfg.Relay {
		if pollSupported {
			s.relay = newRelayPool(s, s.upstreams.route.Load().urls)
		} else {
			s.log.Warn("segmesh.edge.http1Engine relay needs Linux; net/http carries the requests")
		}
	}
	if s.cfg.KCD {
		if err := s.connectKCD(); err != nil {
			return fail(err)
		}
	}
	if s.cfg.Revocation {
		client := s.opts.crl
		if client == nil {
			cc, err := s.conns.Conn(role.CRL)
			if err != nil {
				return fail(fmt.Errorf("edge: revocation checking is on: %w", err))
			}
			client = crlv1.NewRevocationServiceClient(cc)
		}
		if s.cfg.CRL.Policy.RequireKnownIssuer {
			s.revocation.learner = newCDPLearner(client, s.opts.learnWait)
		}
		s.wg.Go(func() { s.revocation.watch(bg, client) })
		s.wg.Go(func() { s.revocation.watchExpiry(bg) })
		t := time.NewTimer(s.opts.snapshotWait)
		select {
		case <-s.revocation.first:
		case <-t.C:
			s.log.Warn("no revocation snapshot yet; client certificates are refused until the crl role sends one")
		case <-ctx.Done():
			t.Stop()
			return fail(ctx.Err())
		}
		t.Stop()
	}
	lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: s.cfg.KeepAlive, Interval: s.cfg.KeepAlive}}
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fail(fmt.Errorf("edge: listen on %s (segmesh.edge.listen): %w", s.cfg.Listen, err))
	}
	s.ln = ln
	s.srv = s.newHTTPServer()
	tlsConf := s.baseTLSConfig()
	s.sessions.use(keys, s.cfg.TicketKeyMaxAge)
	s.listener = newParkListener(tls.NewListener(ln, tlsConf))
	s.wg.Go(func() {
		// Stop closes the listener before Shutdown (door_drain.go).
		if err := s.srv.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) && !s.stopping.Load() {
			s.serveErr.Store(&err)
			s.log.Error("device listener stopped", "err", err)
		}
	})
	s.started.Store(true)
	s.log.Info("edge listening", "addr", ln.Addr().String(), "kcd", s.cfg.KCD, "require_client_cert", s.cfg.RequireClientCert,
		"revocation", s.cfg.Revocation, "upstreams", len(s.cfg.Upstreams), "paths", s.cfg.Paths,
		"tls_ticket_keys_shared", keys != nil)
	return nil
}

// connectKCD sets up the identity and ticket clients with their caches.
func (s *Service) connectKCD() error {
	idm := s.opts.identity
	if idm == nil {
		cc, err := s.conns.Conn(role.Identity)
		if err != nil {
			return fmt.Errorf("edge: KCD is on: %w", err)
		}
		idm = newGRPCIdentity(cc)
	}
	ts := s.opts.tickets
	if ts == nil {
		cc, err := s.conns.Conn(role.Ticket)
		if err != nil {
			return fmt.Errorf("edge: KCD is on: %w", err)
		}
		ts = newGRPCTickets(cc)
	}
	s.identity = newIdentityCache(idm, s.cfg.IdentityCacheTTL, s.cfg.RPCTimeout, s.cfg.CacheSize, s.now)
	s.identity.onGeneration = func(old, cur uint64, dropped int) {
		s.log.Info("identity mapping settings changed; cached mappings of the old ones dropped",
			"old_generation", old, "generation", cur, "dropped", dropped)
	}
	s.tickets = newTicketCache(ts, s.opts.negotiator, s.cfg.TicketMargin, s.cfg.RPCTimeout, s.cfg.CacheSize, s.now)
	// A shared call's panic reaches the device requests waiting for it;
	// these log and count it also when none waits (a background refresh).
	s.identity.calls.g.OnPanic = func(_ string, p *flight.Panic) {
		s.panicReport.Report(telemetry.TaskEdgeIdentityCall, p.Value, p.Stack)
	}
	s.tickets.calls.g.OnPanic = func(_ string, p *flight.Panic) {
		s.panicReport.Report(telemetry.TaskEdgeTicketCall, p.Value, p.Stack)
	}
	return nil
}

type peerKey struct{}

func (s *Service) newHTTPServer() *http.Server {
	return &http.Server{
		Handler: &panicRecovery{next: s, s: s},
		// No ReadTimeout or WriteTimeout: an EAS Ping or a large attachment
		// may take as long as it takes. Slow and huge headers are still cut.
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// A connection a parked Ping handed back keeps its peer record.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return s.fresh.add(context.WithValue(ctx, peerKey{}, s.peers.add(rawConn(c))), c)
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			s.fresh.state(c, st)
			if st == http.StateClosed || st == http.StateHijacked {
				s.peers.remove(rawConn(c))
			}
		},
	}
}

// Ready returns nil when the edge serves, else the reason it does not.
func (s *Service) Ready(context.Context) error {
	if s.stopping.Load() {
		return errors.New("edge shutting down")
	}
	if !s.started.Load() {
		return errors.New("edge not started")
	}
	if p := s.serveErr.Load(); p != nil {
		return fmt.Errorf("device listener stopped: %w", *p)
	}
	if err := s.revocation.ready(); err != nil {
		return err
	}
	return nil
}

// Notes implements role.Noter: the states /readyz shows while the edge is
// ready (a stale CRL accepted under fail-open, a session ticket key file
// not rotated).
func (s *Service) Notes() []string {
	return append(s.revocation.notes(), s.sessions.notes()...)
}

// Stop reports not ready, answers the held Pings, keeps accepting for
// DrainGrace, then stops accepting and lets in-flight requests finish until
// ctx ends, and closes what is left (upstream_drain.go).
func (s *Service) Stop(ctx context.Context) error {
	s.stopping.Store(true)
	err := s.drainDevices(ctx)
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.upstreams != nil {
		s.upstreams.transport.CloseIdleConnections()
		if s.upstreams.replays != nil {
			s.upstreams.replays.CloseIdleConnections()
		}
	}
	if s.relay != nil {
		s.relay.closeIdle()
	}
	s.started.Store(false)
	return err
}

// ExchangeTLS is the TLS configuration the edge verifies Exchange with:
// TLS 1.2 or later, and the certificates of caFile (the resolved
// segmesh.edge.exchangeCaFile) as roots, or the system roots when caFile
// is empty. diagnose builds its Exchange client with it, so the two never
// disagree on which Exchange they trust.
func ExchangeTLS(caFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		// Read through pkg/safefile (config.CAPool): the start, every
		// reload and config check (Validate) read it, and a FIFO there
		// would block them.
		pool, err := config.CAPool(keyExchangeCAFile, caFile, exchangeCAFix)
		if err != nil {
			return nil, fmt.Errorf("edge: %w", err)
		}
		c.RootCAs = pool
	}
	return c, nil
}

// isNoopTracer reports whether t records nothing: OpenTelemetry's no-op
// tracer, which is what the process gets with tracing off.
func isNoopTracer(t trace.Tracer) bool {
	_, ok := t.(tracenoop.Tracer)
	return ok
}
