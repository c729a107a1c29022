package role

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/segmesh/segmesh/pkg/config"
)

// fakeRole records lifecycle calls into a shared journal.
type fakeRole struct {
	name     string
	journal  *journal
	startErr error
	mu       sync.Mutex
	notReady error
}

type journal struct {
	mu    sync.Mutex
	calls []string
}

func (j *journal) add(s string) { j.mu.Lock(); j.calls = append(j.calls, s); j.mu.Unlock() }
func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.calls...)
}

func (f *fakeRole) Name() string                       { return f.name }
func (f *fakeRole) RegisterGRPC(grpc.ServiceRegistrar) {}
func (f *fakeRole) Start(context.Context) error {
	f.journal.add("start " + f.name)
	return f.startErr
}
func (f *fakeRole) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.notReady
}
func (f *fakeRole) Stop(context.Context) error { f.journal.add("stop " + f.name); return nil }

func ctors(j *journal, failing string, roles map[string]*fakeRole) map[string]Constructor {
	out := map[string]Constructor{}
	for _, n := range Order {
		out[n] = func(Deps) (Role, error) {
			r := &fakeRole{name: n, journal: j}
			if n == failing {
				r.startErr = errors.New("boom")
			}
			if roles != nil {
				roles[n] = r
			}
			return r, nil
		}
	}
	return out
}

func testConfig() *config.Config {
	c := config.Default()
	return &c
}

func TestParseRoles(t *testing.T) {
	known := ctors(&journal{}, "", nil)
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{"", "crl,identity,ticket,edge", ""},
		{"all", "crl,identity,ticket,edge", ""},
		{"edge,ticket", "ticket,edge", ""},
		{" ticket , crl ", "crl,ticket", ""},
		{"edge,gateway", "", `unknown role "gateway"; known roles: all, crl, identity, ticket, edge`},
		{",", "", "--roles is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRoles(tt.in, known)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != tt.want {
				t.Fatalf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestGroupStartsInOrderAndStopsInReverse(t *testing.T) {
	j := &journal{}
	roles := map[string]*fakeRole{}
	g, err := NewGroup(GroupOptions{Config: testConfig(), Constructors: ctors(j, "", roles), ReadyInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.ReadyError(); err != nil {
		t.Fatalf("not ready after start: %v", err)
	}
	// Health over the real gRPC API, through the in-process connection.
	conn, err := g.Conn(Ticket)
	if err != nil {
		t.Fatal(err)
	}
	hc := healthpb.NewHealthClient(conn)
	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "ticket"})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health ticket = %v, %v", resp, err)
	}
	// A role turning unready is reported with its reason.
	roles[Identity].mu.Lock()
	roles[Identity].notReady = errors.New("LDAP unreachable")
	roles[Identity].mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err = hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "identity"})
		if err == nil && resp.Status == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("identity still %v, %v", resp, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := g.ReadyError(); err == nil || !strings.Contains(err.Error(), "identity: LDAP unreachable") {
		t.Fatalf("ReadyError = %v", err)
	}
	if err := g.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	want := "start crl,start identity,start ticket,start edge,stop edge,stop ticket,stop identity,stop crl"
	if got := strings.Join(j.get(), ","); got != want {
		t.Fatalf("calls = %s\nwant    %s", got, want)
	}
}

func TestGroupStartFailureStopsStartedRolesAndNamesRole(t *testing.T) {
	j := &journal{}
	g, err := NewGroup(GroupOptions{Config: testConfig(), Constructors: ctors(j, Ticket, nil)})
	if err != nil {
		t.Fatal(err)
	}
	err = g.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "role ticket: start: boom") {
		t.Fatalf("err = %v", err)
	}
	want := "start crl,start identity,start ticket,stop identity,stop crl"
	if got := strings.Join(j.get(), ","); got != want {
		t.Fatalf("calls = %s\nwant    %s", got, want)
	}
}

func TestConnToRemoteRoleNeedsPeerAddress(t *testing.T) {
	j := &journal{}
	g, err := NewGroup(GroupOptions{Config: testConfig(), Roles: []string{Edge}, Constructors: ctors(j, "", nil)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Conn(Ticket); err == nil || !strings.Contains(err.Error(), "segmesh.peers.ticket is empty") {
		t.Fatalf("err = %v", err)
	}
}

// TestConnInProcessIgnoresPeers: a group running every role (`segmesh run`
// without --roles) connects to each in-process, whatever segmesh.peers
// says, so it dials no peer; which is why `config check` without --roles
// does not check the peers (internal/suite's
// TestCheckWithoutRolesAgreesWithRunAll).
func TestConnInProcessIgnoresPeers(t *testing.T) {
	c := testConfig()
	c.Segmesh.Peers = config.Peers{Identity: "10.0.0.5:9443", Ticket: "%zz", CRL: "dns:///crl.seg.svc:9443"}
	g, err := NewGroup(GroupOptions{Config: c, Constructors: ctors(&journal{}, "", nil)})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{CRL, Identity, Ticket} {
		cc, err := g.Conn(name)
		if err != nil {
			t.Fatalf("Conn(%s): %v", name, err)
		}
		if got := cc.(*grpc.ClientConn).Target(); got != "passthrough:///in-process" {
			t.Errorf("Conn(%s) targets %q, not the process itself", name, got)
		}
	}
}

// reloadingRole is a fakeRole that implements Reloader.
type reloadingRole struct {
	*fakeRole
	err error
}

func (r *reloadingRole) Reload(context.Context) error {
	r.journal.add("reload " + r.name)
	return r.err
}

func TestGroupReloadCallsReloadersAndNamesFailures(t *testing.T) {
	j := &journal{}
	known := ctors(j, "", nil)
	known[Edge] = func(Deps) (Role, error) {
		return &reloadingRole{fakeRole: &fakeRole{name: Edge, journal: j}, err: errors.New("trust.pem: no certificate")}, nil
	}
	known[CRL] = func(Deps) (Role, error) { return &reloadingRole{fakeRole: &fakeRole{name: CRL, journal: j}}, nil }
	g, err := NewGroup(GroupOptions{Config: testConfig(), Constructors: known})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Stop(context.Background()) }()
	err = g.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "role edge: reload: trust.pem: no certificate") || strings.Contains(err.Error(), "crl") {
		t.Fatalf("err = %v", err)
	}
	calls := strings.Join(j.get(), ",")
	if !strings.Contains(calls, "reload crl") || !strings.Contains(calls, "reload edge") || strings.Contains(calls, "reload ticket") {
		t.Fatalf("calls = %s", calls)
	}
}

// notingRole is a fakeRole that keeps notes (Noter).
type notingRole struct {
	*fakeRole
	notes []string
}

func (n *notingRole) Notes() []string { return n.notes }

// TestGroupNotes: the group collects the notes of the started roles that
// keep some, each prefixed with the role's name, and none from the others.
func TestGroupNotes(t *testing.T) {
	j := &journal{}
	cs := ctors(j, "", nil)
	cs[Edge] = func(Deps) (Role, error) {
		return &notingRole{fakeRole: &fakeRole{name: Edge, journal: j}, notes: []string{"revocation: stale", "second"}}, nil
	}
	g, err := NewGroup(GroupOptions{Config: testConfig(), Constructors: cs, ReadyInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Notes(); len(got) != 0 {
		t.Fatalf("notes before start = %q, want none (no role started)", got)
	}
	ctx := context.Background()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Stop(ctx) })
	want := []string{"edge: revocation: stale", "edge: second"}
	if got := g.Notes(); !slices.Equal(got, want) {
		t.Fatalf("notes = %q, want %q", got, want)
	}
}
