package role

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/rpc"
)

// GroupOptions configures a Group.
type GroupOptions struct {
	// Config is the validated configuration; required.
	Config *config.Config
	// Roles are the roles to run; nil means every constructor's role.
	Roles []string
	// Constructors maps role names to constructors; required.
	Constructors map[string]Constructor
	// Logger is the process logger; nil means discard.
	Logger *slog.Logger
	// MeterProvider and TracerProvider; nil means no-op.
	MeterProvider metric.MeterProvider
	// TracerProvider provides each role's tracer; nil means no-op.
	TracerProvider trace.TracerProvider
	// ExternalServer serves the co-located roles' APIs to other processes
	// (segmesh.grpc.listen) with its own credentials and interceptors; nil
	// means the roles are reachable in-process only.
	ExternalServer *grpc.Server
	// ExternalListener is where ExternalServer serves; required with it.
	ExternalListener net.Listener
	// DialOptions returns the options to reach a remote role at addr; nil
	// means plaintext (loopback and meshes only).
	DialOptions func(role, addr string) []grpc.DialOption
	// InternalServerOptions are added to the in-process server (interceptors).
	InternalServerOptions []grpc.ServerOption
	// Status receives status sections; may be nil.
	Status StatusSink
	// ReadyInterval is how often readiness is re-evaluated; 0 means 1s.
	ReadyInterval time.Duration
}

// Group runs a set of roles: constructs them (no I/O), starts them in the
// fixed order, watches readiness, and stops them in reverse.
type Group struct {
	opts     GroupOptions
	log      *slog.Logger
	roles    []Role
	services map[string][]string // role → gRPC service names it registered
	internal *grpc.Server
	lis      *bufconn.Listener
	health   *health.Server
	extHlth  *health.Server

	connMu sync.Mutex
	conns  map[string]*grpc.ClientConn

	applyMu sync.Mutex // serialises ApplyConfig

	mu        sync.Mutex
	readiness map[string]error
	started   []Role
	stopping  bool
	stopWatch context.CancelFunc
	watchDone chan struct{}
	serveErr  chan error
}

// NewGroup builds the roles. It does no I/O.
func NewGroup(opts GroupOptions) (*Group, error) {
	if opts.Config == nil || opts.Constructors == nil {
		return nil, errors.New("role: group needs a config and constructors")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MeterProvider == nil {
		opts.MeterProvider = metricnoop.NewMeterProvider()
	}
	if opts.TracerProvider == nil {
		opts.TracerProvider = tracenoop.NewTracerProvider()
	}
	if opts.ReadyInterval <= 0 {
		opts.ReadyInterval = time.Second
	}
	if opts.Roles == nil {
		opts.Roles = KnownNames(opts.Constructors)
	}
	g := &Group{
		opts:      opts,
		log:       opts.Logger,
		services:  map[string][]string{},
		internal:  grpc.NewServer(append(rpc.ServerOptions(opts.Logger, opts.MeterProvider.Meter("segmesh/rpc")), opts.InternalServerOptions...)...),
		lis:       bufconn.Listen(1 << 20),
		health:    health.NewServer(),
		conns:     map[string]*grpc.ClientConn{},
		readiness: map[string]error{},
		serveErr:  make(chan error, 2),
	}
	healthpb.RegisterHealthServer(g.internal, g.health)
	if opts.ExternalServer != nil {
		if opts.ExternalListener == nil {
			return nil, errors.New("role: ExternalServer needs ExternalListener")
		}
		g.extHlth = health.NewServer()
		healthpb.RegisterHealthServer(opts.ExternalServer, g.extHlth)
	}
	for _, name := range opts.Roles {
		ctor, ok := opts.Constructors[name]
		if !ok {
			return nil, fmt.Errorf("role: unknown role %q; known roles: %v", name, KnownNames(opts.Constructors))
		}
		r, err := ctor(Deps{
			Config: opts.Config,
			Logger: opts.Logger.With("role", name),
			Conns:  g,
			Meter:  opts.MeterProvider.Meter("segmesh/" + name),
			Tracer: opts.TracerProvider.Tracer("segmesh/" + name),
			Status: opts.Status,
		})
		if err != nil {
			return nil, fmt.Errorf("role %s: %w", name, err)
		}
		before := serviceNames(g.internal)
		r.RegisterGRPC(g.internal)
		for s := range serviceNames(g.internal) {
			if !before[s] {
				g.services[name] = append(g.services[name], s)
			}
		}
		if opts.ExternalServer != nil {
			r.RegisterGRPC(opts.ExternalServer)
		}
		g.roles = append(g.roles, r)
		g.readiness[name] = errors.New("not started")
		g.setHealth(name, false)
	}
	g.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if g.extHlth != nil {
		g.extHlth.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	}
	return g, nil
}

func serviceNames(s *grpc.Server) map[string]bool {
	out := map[string]bool{}
	for n := range s.GetServiceInfo() {
		out[n] = true
	}
	return out
}

// Roles returns the names of the roles in this group, in start order.
func (g *Group) Roles() []string {
	out := make([]string, len(g.roles))
	for i, r := range g.roles {
		out[i] = r.Name()
	}
	return out
}

// Has reports whether the group runs the named role.
func (g *Group) Has(name string) bool {
	for _, r := range g.roles {
		if r.Name() == name {
			return true
		}
	}
	return false
}

// Conn returns a client connection to the named role: in-process when the
// role runs in this group, else to its configured peer address.
func (g *Group) Conn(name string) (grpc.ClientConnInterface, error) {
	g.connMu.Lock()
	defer g.connMu.Unlock()
	if c, ok := g.conns[name]; ok {
		return c, nil
	}
	var (
		c   *grpc.ClientConn
		err error
	)
	if g.Has(name) {
		c, err = grpc.NewClient("passthrough:///in-process", append(rpc.DialOptions(),
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return g.lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	} else {
		addr := PeerAddr(g.opts.Config, name)
		if addr == "" {
			return nil, NoPeerError(name)
		}
		if err := userinfoError(addr); err != nil {
			return nil, fmt.Errorf("connect to role %s: %w", name, err)
		}
		var dopts []grpc.DialOption
		if g.opts.DialOptions != nil {
			dopts = g.opts.DialOptions(name, addr)
		} else {
			dopts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		}
		if c, err = grpc.NewClient(addr, append(rpc.DialOptions(), dopts...)...); err == nil {
			if terr := targetError(c); terr != nil {
				_ = c.Close()
				c, err = nil, terr
			}
		}
	}
	if err != nil {
		return nil, redactedError(fmt.Errorf("connect to role %s: %w", name, err), PeerAddr(g.opts.Config, name))
	}
	g.conns[name] = c
	return c, nil
}

// Start serves the gRPC APIs and starts the roles in order. If a role fails,
// the ones already started are stopped in reverse and the error names the role.
func (g *Group) Start(ctx context.Context) error {
	go func() { g.serveErr <- g.internal.Serve(g.lis) }()
	if g.opts.ExternalServer != nil {
		go func() { g.serveErr <- g.opts.ExternalServer.Serve(g.opts.ExternalListener) }()
	}
	for _, r := range g.roles {
		g.log.Info("role starting", "role", r.Name())
		t0 := time.Now()
		if err := r.Start(ctx); err != nil {
			g.log.Error("role failed to start", "role", r.Name(), "err", err)
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_ = g.Stop(stopCtx)
			cancel()
			return fmt.Errorf("role %s: start: %w", r.Name(), err)
		}
		g.mu.Lock()
		g.started = append(g.started, r)
		g.mu.Unlock()
		g.log.Info("role started", "role", r.Name(), "took", time.Since(t0).Round(time.Millisecond))
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g.stopWatch = cancel
	g.watchDone = make(chan struct{})
	g.checkReady(wctx)
	go g.watchReady(wctx)
	return nil
}

// Reload asks every started role that implements Reloader to reload, and
// returns their errors joined, each naming its role.
func (g *Group) Reload(ctx context.Context) error {
	g.mu.Lock()
	started := append([]Role(nil), g.started...)
	g.mu.Unlock()
	var errs []error
	for _, r := range started {
		if rl, ok := r.(Reloader); ok {
			if err := rl.Reload(ctx); err != nil {
				errs = append(errs, fmt.Errorf("role %s: reload: %w", r.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// Notes returns the notes of every started role that keeps some (Noter),
// each line prefixed with the role's name.
func (g *Group) Notes() []string {
	g.mu.Lock()
	started := append([]Role(nil), g.started...)
	g.mu.Unlock()
	var out []string
	for _, r := range started {
		if n, ok := r.(Noter); ok {
			for _, line := range n.Notes() {
				out = append(out, r.Name()+": "+line)
			}
		}
	}
	return out
}

// LiveKeys returns, by role name, the settings each started role applies
// live (ConfigApplier); roles that apply none are absent.
func (g *Group) LiveKeys() map[string][]string {
	g.mu.Lock()
	started := append([]Role(nil), g.started...)
	g.mu.Unlock()
	out := map[string][]string{}
	for _, r := range started {
		if a, ok := r.(ConfigApplier); ok {
			out[r.Name()] = a.LiveKeys()
		}
	}
	return out
}

// ApplyConfig gives next to every started role that applies a
// configuration live and whose LiveKeys name one of changed, in two phases:
// it prepares them all (ConfigApplier.PrepareConfig), then commits them all
// when every one prepared. When any prepare fails no role switches, and the
// error joins every refusal, each naming its role. Calls are serialised.
func (g *Group) ApplyConfig(ctx context.Context, next *config.Config, changed []string) error {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	g.mu.Lock()
	started := append([]Role(nil), g.started...)
	g.mu.Unlock()
	var (
		errs    []error
		commits []func()
	)
	for _, r := range started {
		a, ok := r.(ConfigApplier)
		if !ok || !slices.ContainsFunc(a.LiveKeys(), func(k string) bool { return slices.Contains(changed, k) }) {
			continue
		}
		commit, err := a.PrepareConfig(ctx, next)
		if err != nil {
			errs = append(errs, fmt.Errorf("role %s: apply configuration: %w", r.Name(), err))
			continue
		}
		if commit != nil {
			commits = append(commits, commit)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, commit := range commits {
		commit()
	}
	return nil
}

// Err returns a channel that receives a gRPC serve error, should a server stop
// on its own.
func (g *Group) Err() <-chan error { return g.serveErr }

func (g *Group) watchReady(ctx context.Context) {
	defer close(g.watchDone)
	t := time.NewTicker(g.opts.ReadyInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.checkReady(ctx)
		}
	}
}

// checkReady asks every started role whether it is ready and updates health.
func (g *Group) checkReady(ctx context.Context) {
	g.mu.Lock()
	started := append([]Role(nil), g.started...)
	stopping := g.stopping
	g.mu.Unlock()
	if stopping {
		return
	}
	all := len(started) == len(g.roles)
	for _, r := range started {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := r.Ready(rctx)
		cancel()
		g.mu.Lock()
		prev := g.readiness[r.Name()]
		g.readiness[r.Name()] = err
		g.mu.Unlock()
		if (prev == nil) != (err == nil) {
			if err != nil {
				g.log.Warn("role not ready", "role", r.Name(), "reason", err)
			} else {
				g.log.Info("role ready", "role", r.Name())
			}
		}
		g.setHealth(r.Name(), err == nil)
		all = all && err == nil
	}
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if all {
		st = healthpb.HealthCheckResponse_SERVING
	}
	g.health.SetServingStatus("", st)
	if g.extHlth != nil {
		g.extHlth.SetServingStatus("", st)
	}
}

func (g *Group) setHealth(name string, ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, h := range []*health.Server{g.health, g.extHlth} {
		if h == nil {
			continue
		}
		h.SetServingStatus(name, st)
		for _, s := range g.services[name] {
			h.SetServingStatus(s, st)
		}
	}
}

// Readiness returns each role's readiness: nil when ready, else the reason.
func (g *Group) Readiness() map[string]error {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]error, len(g.readiness))
	for k, v := range g.readiness {
		out[k] = v
	}
	if g.stopping {
		for k := range out {
			out[k] = errors.New("shutting down")
		}
	}
	return out
}

// ReadyError returns nil when every role is ready, else one error naming
// each role that is not and why.
func (g *Group) ReadyError() error {
	var errs []error
	r := g.Readiness()
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if r[n] != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, r[n]))
		}
	}
	return errors.Join(errs...)
}

// Stop reports not-ready at once, stops the roles in reverse start order
// (each drains until ctx ends), then stops the gRPC servers gracefully,
// forcing them when ctx ends.
func (g *Group) Stop(ctx context.Context) error {
	g.mu.Lock()
	g.stopping = true
	started := append([]Role(nil), g.started...)
	g.started = nil
	g.mu.Unlock()
	g.health.Shutdown()
	if g.extHlth != nil {
		g.extHlth.Shutdown()
	}
	if g.stopWatch != nil {
		g.stopWatch()
		<-g.watchDone
	}
	var errs []error
	for i := len(started) - 1; i >= 0; i-- {
		r := started[i]
		g.log.Info("role stopping", "role", r.Name())
		t := time.Now()
		if err := r.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("role %s: stop: %w", r.Name(), err))
		}
		g.log.Info("role stopped", "role", r.Name(), "took", time.Since(t))
	}
	t := time.Now()
	g.connMu.Lock()
	for _, c := range g.conns {
		_ = c.Close()
	}
	g.conns = map[string]*grpc.ClientConn{}
	g.connMu.Unlock()
	servers := []*grpc.Server{g.internal}
	if g.opts.ExternalServer != nil {
		servers = append(servers, g.opts.ExternalServer)
	}
	for _, s := range servers {
		done := make(chan struct{})
		go func() { s.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.Stop()
			<-done
		}
	}
	// Where a slow exit goes (bench/drain.sh).
	g.log.Info("role group stopped: connections closed and gRPC servers stopped", "took", time.Since(t))
	return errors.Join(errs...)
}
