package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync"
	"time"
)

// Board collects the status sections roles publish. It implements
// role.StatusSink. The zero value is ready to use.
type Board struct {
	mu       sync.Mutex
	sections map[string]func() any
}

// Publish sets a section's value function, called at each read.
func (b *Board) Publish(section string, value func() any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sections == nil {
		b.sections = map[string]func() any{}
	}
	b.sections[section] = value
}

// Snapshot returns every section's current value.
func (b *Board) Snapshot() map[string]any {
	b.mu.Lock()
	fns := make(map[string]func() any, len(b.sections))
	for k, v := range b.sections {
		fns[k] = v
	}
	b.mu.Unlock()
	out := make(map[string]any, len(fns))
	for k, f := range fns {
		out[k] = f()
	}
	return out
}

// Options configures the admin server.
type Options struct {
	// Listen is the address, for example 127.0.0.1:9090.
	Listen string
	// Readiness returns each role's readiness (nil = ready).
	Readiness func() map[string]error
	// Notes, when set, returns lines /readyz adds to its body without
	// changing its status (a refused reload of config.json: visible to
	// whoever reads /readyz, while the balancer keeps the working gateway).
	Notes func() []string
	// Metrics serves /metrics; nil means 404.
	Metrics http.Handler
	// Board holds the status sections; nil means none.
	Board *Board
	// Logger logs the server's own events.
	Logger *slog.Logger
	// Extra mounts more handlers (path → handler), for example the status page.
	Extra map[string]http.Handler
	// Pprof serves Go's runtime profiles under /debug/pprof/ (CPU, heap,
	// goroutines). Off by default: profiles show request paths and timings.
	Pprof bool
	// Token, when set, is the bearer token every path but /healthz and
	// /readyz requires (segmesh.admin.tokenFile); empty leaves them open.
	Token string
	// PersonalData shows UPNs, certificate subjects and serials, the LDAP
	// endpoint and base DN in /status.json (segmesh.admin.showPersonalData);
	// false hides them (PersonalKeys).
	PersonalData bool
}

// Server is the admin HTTP server.
type Server struct {
	opts Options
	srv  *http.Server
	lis  net.Listener
	done chan error
	// fresh holds the connections that have not sent a request yet, for Stop.
	mu    sync.Mutex
	fresh map[net.Conn]struct{}
}

// New builds the server; it does no I/O.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /status.json", s.statusJSON)
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	for p, h := range o.Extra {
		mux.Handle(p, h)
	}
	if o.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	s.srv = &http.Server{Handler: requireToken(o.Token, mux), ReadHeaderTimeout: 5 * time.Second, ConnState: s.track}
	return s
}

// track follows each connection's state: StateNew until its first request's
// bytes arrive.
func (s *Server) track(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == http.StateNew {
		if s.fresh == nil {
			s.fresh = map[net.Conn]struct{}{}
		}
		s.fresh[c] = struct{}{}
		return
	}
	delete(s.fresh, c)
}

// closeFresh closes the connections that have sent no request.
func (s *Server) closeFresh() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.fresh {
		_ = c.Close()
	}
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	lis, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("admin: listen on %s (segmesh.admin.listen): %w", s.opts.Listen, err)
	}
	s.lis = lis
	s.done = make(chan error, 1)
	go func() { s.done <- s.srv.Serve(lis) }()
	s.opts.Logger.Info("admin listening", "addr", lis.Addr().String())
	return nil
}

// Addr returns the listening address (useful with port 0).
func (s *Server) Addr() string {
	if s.lis == nil {
		return ""
	}
	return s.lis.Addr().String()
}

// Stop shuts the server down.
func (s *Server) Stop(ctx context.Context) error {
	if s.lis == nil {
		return nil
	}
	// Requests under way finish. A connection that has sent no request is
	// closed rather than waited for: net/http's Shutdown gives such a
	// connection 5 s, and a prober whose CPU is busy opens one and writes
	// its request late — which held segmesh's exit 1.1–2.75 s after every
	// role had stopped (bench/drain.sh). The process is going; the prober
	// finds it gone a moment later anyway.
	shut := make(chan error, 1)
	go func() { shut <- s.srv.Shutdown(ctx) }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		select {
		case err = <-shut:
			break wait
		case <-tick.C:
			s.closeFresh() // the listener is closed by now or at the next tick
		}
	}
	if serr := <-s.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// readyz answers 200 "ready" when every role is ready, else 503 with one
// line per role that is not and why.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var r map[string]error
	if s.opts.Readiness != nil {
		r = s.opts.Readiness()
	}
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	var bad []string
	for _, n := range names {
		if r[n] != nil {
			bad = append(bad, fmt.Sprintf("%s: not ready: %v", n, r[n]))
		}
	}
	var notes []string
	if s.opts.Notes != nil {
		notes = s.opts.Notes()
	}
	if len(bad) > 0 || len(r) == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		if len(r) == 0 {
			_, _ = fmt.Fprintln(w, "no roles")
		}
		for _, b := range bad {
			_, _ = fmt.Fprintln(w, b)
		}
	} else {
		for _, n := range names {
			_, _ = fmt.Fprintf(w, "%s: ready\n", n)
		}
	}
	for _, n := range notes {
		_, _ = fmt.Fprintln(w, n)
	}
}

// RoleStatus is one role's readiness as /status.json reports it.
type RoleStatus struct {
	// Ready reports whether the role can serve.
	Ready bool `json:"ready"`
	// Reason says why not; empty when ready.
	Reason string `json:"reason,omitempty"`
}

// statusJSON serves readiness and every published section as JSON.
func (s *Server) statusJSON(w http.ResponseWriter, _ *http.Request) {
	out := map[string]any{"time": time.Now().UTC()}
	roles := map[string]RoleStatus{}
	if s.opts.Readiness != nil {
		for n, err := range s.opts.Readiness() {
			rs := RoleStatus{Ready: err == nil}
			if err != nil {
				rs.Reason = err.Error()
			}
			roles[n] = rs
		}
	}
	out["roles"] = roles
	if s.opts.Board != nil {
		out["sections"] = s.opts.Board.sectionsFor(s.opts.PersonalData)
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}
