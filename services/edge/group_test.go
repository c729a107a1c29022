package edge

import (
	"context"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/segmesh/segmesh/pkg/role"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
	identityv1 "github.com/segmesh/segmesh/proto/segmesh/identity/v1"
	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// fakeRole serves a fake API in the Group's in-process gRPC server.
type fakeRole struct {
	name     string
	register func(grpc.ServiceRegistrar)
}

func (f fakeRole) Name() string                         { return f.name }
func (f fakeRole) RegisterGRPC(s grpc.ServiceRegistrar) { f.register(s) }
func (fakeRole) Start(context.Context) error            { return nil }
func (fakeRole) Ready(context.Context) error            { return nil }
func (fakeRole) Stop(context.Context) error             { return nil }

// TestAllInOneGroup runs the edge from its exported constructor in a
// role.Group beside fake identity, ticket and crl roles, reached through the
// Group's in-process gRPC connections, as `segmesh run` does.
func TestAllInOneGroup(t *testing.T) {
	h := newHarness(t, nil, options{}) // PKI, config files and fakes; its own edge is not used
	cfg := *h.cfg
	var edge *Service
	ctors := map[string]role.Constructor{
		role.CRL: func(role.Deps) (role.Role, error) {
			return fakeRole{role.CRL, func(s grpc.ServiceRegistrar) { crlv1.RegisterRevocationServiceServer(s, h.crl) }}, nil
		},
		role.Identity: func(role.Deps) (role.Role, error) {
			return fakeRole{role.Identity, func(s grpc.ServiceRegistrar) { identityv1.RegisterIdentityServiceServer(s, h.idm) }}, nil
		},
		role.Ticket: func(role.Deps) (role.Role, error) {
			return fakeRole{role.Ticket, func(s grpc.ServiceRegistrar) { ticketv1.RegisterTicketServiceServer(s, h.tickets) }}, nil
		},
		role.Edge: func(d role.Deps) (role.Role, error) {
			r, err := Constructor(d)
			if err == nil {
				edge = r.(*Service)
			}
			return r, err
		},
	}
	g, err := role.NewGroup(role.GroupOptions{Config: &cfg, Constructors: ctors, ReadyInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	startStopped(t, g)
	waitFor(t, "group ready", func() bool { return g.ReadyError() == nil })

	h.edge = edge
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	resp, body := get(t, h.client(&cert, true), h.url(syncPath), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	if err := g.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if edge.Ready(context.Background()) == nil {
		t.Fatal("edge ready after the group stopped")
	}
}
