package suite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/segmesh/segmesh/pkg/admin"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// Options configures Run.
type Options struct {
	// ConfigPath is config.json; empty means run on Default() (no file).
	ConfigPath string
	// Roles is --roles: "all" or a comma-separated list.
	Roles string
	// Stderr receives the log.
	Stderr io.Writer
	// Constructors overrides the registry (tests); nil means Constructors().
	Constructors map[string]role.Constructor
	// Ready, if set, is called once every role has started, with the admin address.
	Ready func(adminAddr string)
	// DrainTimeout bounds the graceful stop; 0 means
	// config.DrainTimeoutSeconds.
	DrainTimeout time.Duration
	// Adjust, when set, changes the loaded configuration before any role is
	// built (tests: a fake KDC's loopback port where config.json must name a
	// domain controller by FQDN). The production command never sets it.
	Adjust func(*config.Config)
	// GRPCListener, when set, is the listener for segmesh.grpc.listen, made by
	// the caller (tests on port 0 that must know the address before peers
	// start); nil listens on the configured address.
	GRPCListener net.Listener
	// ReloadPoll is how often config.json and the files it names are read
	// for a change (reload.go); 0 means DefaultReloadPoll, negative means
	// SIGHUP only.
	ReloadPoll time.Duration
}

// LoadForRun prepares config.json the way run does: encrypt the
// ".plaintext" secrets the roles use (atomic rewrite; another role's are
// left for its own process and key), then load it opening only the secrets
// the roles use (nil roles: all). It returns the report for logging.
func LoadForRun(path string, roles []string, log *slog.Logger) (*config.Config, *config.Report, error) {
	if path == "" {
		c := config.Default()
		c.BaseDir, _ = os.Getwd()
		return &c, &config.Report{}, nil
	}
	done, err := config.EncryptPlaintextSecretsFor(path, roles, nil)
	if err != nil {
		return nil, nil, err
	}
	for _, k := range done {
		log.Info("secret encrypted and config.json rewritten", "key", k, "file", path)
	}
	return config.LoadFor(path, roles)
}

// Run starts the selected roles and blocks until ctx ends (SIGTERM), then
// drains: not ready at once, roles stopped in reverse, gRPC stopped gracefully.
func Run(ctx context.Context, o Options) error { return run(ctx, o, o.Adjust) }

// run is Run with a hook to adjust the loaded configuration (tests use it
// to move listeners to port 0).
func run(ctx context.Context, o Options, adjust func(*config.Config)) error {
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	boot := slog.New(slog.NewTextHandler(o.Stderr, &slog.HandlerOptions{ReplaceAttr: telemetry.Redact}))
	ctors := o.Constructors
	if ctors == nil {
		ctors = Constructors()
	}
	roles, err := role.ParseRoles(o.Roles, ctors)
	if err != nil {
		return err
	}
	// Only the secrets of these roles are decrypted (least privilege: an
	// edge-only process never holds the service account's password).
	cfg, report, err := LoadForRun(o.ConfigPath, roles, boot)
	if err != nil {
		return err
	}
	if adjust != nil {
		adjust(cfg)
	}
	// Lines are batched (one write per 100 ms or 64 KiB instead of one per
	// access-log line: ~5 µs of every request, docs/benchmarks.md) and the
	// rest written on every way out of run.
	lw := telemetry.NewBufferedWriter(o.Stderr, telemetry.BufferOptions{})
	defer func() { _ = lw.Close() }()
	level := new(slog.LevelVar) // a reload changes it
	lv, err := telemetry.ParseLevel(cfg.Segmesh.Telemetry.LogLevel)
	if err != nil {
		return err
	}
	level.Set(lv)
	log, err := telemetry.NewLoggerAt(lw, level, cfg.Segmesh.Telemetry.LogFormat)
	if err != nil {
		return err
	}
	logProblems := func(ps []config.Problem) {
		for _, p := range ps {
			switch p.Severity {
			case config.SeverityWarning:
				log.Warn("config warning", "key", p.Key, "problem", p.Message, "fix", p.Fix)
			case config.SeverityIgnored:
				log.Info("config setting ignored", "key", p.Key, "reason", p.Message)
			}
		}
	}
	logProblems(report.Problems)
	// The roles' own rules, as `config check` runs them: run refuses their
	// errors, and logs and lists on /status their warnings.
	roleProblems := Validate(cfg, report, roles)
	if err := config.ErrorOf(cfg.Path, roleProblems); err != nil {
		return err
	}
	logProblems(roleProblems)

	prov, err := telemetry.Setup(ctx, telemetry.Options{OTLPEndpoint: cfg.Segmesh.Telemetry.OTLPEndpoint, OTLPInsecure: cfg.Segmesh.Telemetry.OTLPInsecure})
	if err != nil {
		return err
	}
	defer func() { _ = prov.Shutdown(context.WithoutCancel(ctx)) }()

	board := &admin.Board{}
	gopts := role.GroupOptions{
		Config: cfg, Roles: roles, Constructors: ctors, Logger: log,
		MeterProvider: prov.Meter, TracerProvider: prov.Tracer, Status: board,
	}
	if err := splitMode(cfg, log, &gopts, o.GRPCListener); err != nil {
		return err
	}
	g, err := role.NewGroup(gopts)
	if err != nil {
		return err
	}
	problems := append(append(append([]config.Problem(nil), report.Problems...), roleProblems...), config.MigrationNotes(cfg)...)
	rl, err := newReloader(cfg.Path, roles, cfg, problems, log, level, g, adjust, prov.Meter.Meter("segmesh/reload"))
	if err != nil {
		return err
	}
	board.Publish("reload", func() any { return rl.Status() })
	board.Publish("traces", func() any { return prov.TraceExport() })
	token, err := adminToken(cfg)
	if err != nil {
		return err
	}
	ac := cfg.Segmesh.Admin
	status := admin.StatusPage(admin.StatusPageOptions{Readiness: g.Readiness, Board: board, Metrics: prov.Registry,
		ConfigProblems: rl.Problems, PersonalData: ac.ShowPersonalData})
	notes := func() []string { return slices.Concat(rl.Notes(), g.Notes(), prov.Notes()) }
	adm := admin.New(admin.Options{Listen: ac.Listen, Readiness: g.Readiness, Notes: notes, Metrics: prov.MetricsHandler(), Board: board, Logger: log,
		Pprof: ac.Pprof, Extra: map[string]http.Handler{"GET /status": status}, Token: token, PersonalData: ac.ShowPersonalData})
	if err := adm.Start(); err != nil {
		return err
	}
	drain := o.DrainTimeout
	if drain <= 0 {
		drain = config.DrainTimeoutSeconds * time.Second
	}
	stopAll := func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
		defer cancel()
		gerr := g.Stop(sctx)
		t := time.Now()
		aerr := adm.Stop(sctx)
		log.Info("admin server stopped", "took", time.Since(t))
		return errors.Join(gerr, aerr)
	}
	log.Info("segmesh starting", "roles", roles, "config", cfg.Path)
	if err := g.Start(ctx); err != nil {
		_ = adm.Stop(context.WithoutCancel(ctx))
		return err
	}
	log.Info("segmesh started", "roles", roles, "admin", adm.Addr())
	if o.Ready != nil {
		o.Ready(adm.Addr())
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	poll := o.ReloadPoll
	if poll == 0 {
		poll = DefaultReloadPoll
	}
	var tick <-chan time.Time
	if poll > 0 && cfg.Path != "" {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down: draining in-flight requests", "timeout", drain)
			break wait
		case <-tick:
			rl.Poll(ctx)
		case <-hup:
			if cfg.Path != "" {
				_ = rl.Reload(ctx, "SIGHUP") // logged, on /status, /readyz and the metric
			}
			if err := g.Reload(ctx); err != nil {
				log.Error("reload on SIGHUP failed; the previous state stays in use", "err", err)
			} else {
				log.Info("reloaded on SIGHUP")
			}
		case err := <-g.Err():
			log.Error("grpc server stopped", "err", err)
			return errors.Join(fmt.Errorf("grpc server: %w", err), stopAll())
		}
	}
	err = stopAll()
	log.Info("segmesh stopped")
	return err
}
