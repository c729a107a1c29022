package role

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/segmesh/segmesh/pkg/config"
)

// Role names, in start order.
const (
	CRL      = "crl"
	Identity = "identity"
	Ticket   = "ticket"
	Edge     = "edge"
)

// Order is the fixed start order; Stop runs in reverse.
var Order = []string{CRL, Identity, Ticket, Edge}

// Role is one service of the suite.
type Role interface {
	// Name returns the role's name, one of Order.
	Name() string
	// RegisterGRPC registers the role's gRPC services; a role without an API
	// (edge) registers nothing.
	RegisterGRPC(s grpc.ServiceRegistrar)
	// Start does the role's fail-fast setup (listeners, first fetches, first
	// TGT); an error stops the whole group.
	Start(ctx context.Context) error
	// Ready returns nil when the role can serve, else the reason it cannot.
	Ready(ctx context.Context) error
	// Stop drains in-flight work until ctx ends, then releases everything.
	Stop(ctx context.Context) error
}

// Reloader is implemented by roles that re-read files on SIGHUP (the edge's
// trust store, for example). Reload keeps the old state when the new one is bad.
type Reloader interface {
	// Reload re-reads what the role loaded from files at start.
	Reload(ctx context.Context) error
}

// ConfigApplier is implemented by roles that apply a new configuration live
// (segmesh run reloads config.json on SIGHUP or when it changes). The new
// configuration has passed config.Load and every role's Validate before
// PrepareConfig sees it; a setting a role does not list in LiveKeys is named
// as waiting for a restart instead.
//
// Applying is two-phase so that a reload never leaves a mix: Group.ApplyConfig
// prepares every role concerned, and calls the commits only when every
// prepare succeeded; otherwise it calls none and every role keeps what it
// runs on.
type ConfigApplier interface {
	// LiveKeys lists the settings (JSON paths as in config.json, for
	// example "segmesh.edge.exchangeUrls") PrepareConfig applies.
	LiveKeys() []string
	// PrepareConfig builds and checks everything next needs that can fail
	// (files, parsed settings, new clients, a proving exchange with a
	// server) without changing what the role serves with, and returns the
	// commit that switches the role to it. commit cannot fail, does no I/O
	// that can block (it swaps pointers), and must leave requests already
	// running to finish on what they started with. A prepared state whose
	// commit is never called is dropped: PrepareConfig closes what it opened
	// only to check, and opens nothing else that needs closing before commit.
	// On error the role is unchanged.
	PrepareConfig(ctx context.Context, next *config.Config) (commit func(), err error)
}

// Noter is implemented by roles that can be ready and still run in a state
// an operator must see: /readyz adds the notes to its body and keeps its
// status (the edge's stale CRL under fail-open, for example: served by the
// operator's choice, never silently).
type Noter interface {
	// Notes returns one line per such state, naming the setting involved;
	// nil when there is none.
	Notes() []string
}

// Conns gives a role a client connection to another role, co-located (in
// process, through the same gRPC API) or remote (peer address from config).
type Conns interface {
	// Conn returns the connection for the named role.
	Conn(role string) (grpc.ClientConnInterface, error)
}

// Deps is what a constructor receives. Nothing in it does I/O until used.
type Deps struct {
	// Config is the validated configuration.
	Config *config.Config
	// Logger is the role's logger, already carrying role=<name>.
	Logger *slog.Logger
	// Conns reaches the other roles.
	Conns Conns
	// Meter records the role's metrics.
	Meter metric.Meter
	// Tracer records the role's spans.
	Tracer trace.Tracer
	// Status receives facts for the admin status page; may be nil.
	Status StatusSink
}

// StatusSink collects named status sections for the admin status page.
type StatusSink interface {
	// Publish sets the section's current value (JSON-marshalable).
	Publish(section string, value func() any)
}

// Constructor builds a role without doing I/O.
type Constructor func(Deps) (Role, error)

// ParseRoles turns --roles's value into the roles to run, in start order.
// "all" (or empty) means every known role; unknown names are refused with the
// list of known ones.
func ParseRoles(s string, known map[string]Constructor) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		var out []string
		for _, n := range Order {
			if _, ok := known[n]; ok {
				out = append(out, n)
			}
		}
		return out, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if _, ok := known[n]; !ok {
			return nil, fmt.Errorf("role: unknown role %q; known roles: all, %s", n, strings.Join(KnownNames(known), ", "))
		}
		want[n] = true
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("role: --roles is empty; known roles: all, %s", strings.Join(KnownNames(known), ", "))
	}
	var out []string
	for _, n := range Order {
		if want[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// KnownNames lists the known roles in start order.
func KnownNames(known map[string]Constructor) []string {
	var out []string
	for _, n := range Order {
		if _, ok := known[n]; ok {
			out = append(out, n)
		}
	}
	for n := range known {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
