package role

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// TestAttackPeerTargetsTheResolverRefuses: segmesh.peers targets that
// grpc.NewClient takes, and CheckPeer and Conn passed on main, but whose
// resolver or dial refuses every call (gRPC's passthrough, unix and dns
// resolvers, v1.85): the start went on and every call to the role failed.
// The targets deployments write still pass, and reach a server.
func TestAttackPeerTargetsTheResolverRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, addr string
	}{
		{"passthrough without an address", "passthrough:///"},
		{"passthrough without a port (net.Dial refuses it)", "passthrough:///ticket.seg.svc"},
		{"passthrough with a colon and no port", "passthrough:///ticket.seg.svc:"},
		{"a Unix socket without a path", "unix:"},
		{"an abstract Unix socket with a host", "unix-abstract://ticket/segmesh-ticket"},
		{"an abstract Unix socket without a name", "unix-abstract:"},
		{"a DNS server that ends in a colon", "dns://10.0.0.53:/ticket.seg.svc:9443"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, checkErr, connErr := checkAndConn(t, tc.addr)
			if checkErr == nil || connErr == nil {
				t.Fatalf("CheckPeer: %v, Conn: %v; want both to refuse %q", checkErr, connErr, tc.addr)
			}
			if checkErr.Error() != connErr.Error() {
				t.Errorf("CheckPeer says %q, Conn %q", checkErr, connErr)
			}
		})
	}
}

// TestAttackPeerTargetsDeploymentsUse: the targets deploy/k8s, bench and
// the split tests write, and the other forms gRPC documents, pass CheckPeer
// and Conn, and a call through Conn reaches the server listening there
// (answered Unimplemented by a server without the service).
func TestAttackPeerTargetsDeploymentsUse(t *testing.T) {
	serve := func(network, addr string) string {
		t.Helper()
		l, err := net.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer()
		go func() { _ = s.Serve(l) }()
		t.Cleanup(s.Stop)
		return l.Addr().String()
	}
	tcp := serve("tcp", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(tcp)
	sock := t.TempDir() + "/ticket.sock"
	serve("unix", sock)
	abstract := "segmesh-rvcheck2-" + strings.ReplaceAll(t.Name(), "/", "-")
	serve("unix", "@"+abstract)
	for _, addr := range []string{
		tcp,
		"dns:///" + tcp,
		"dns:///localhost:" + port,
		"dns://127.0.0.1:53/" + tcp, // the server is not asked for an address
		"passthrough:///" + tcp,
		"unix://" + sock,
		"unix:" + sock,
		"unix-abstract:" + abstract,
	} {
		t.Run(addr, func(t *testing.T) {
			c := testConfig()
			c.Segmesh.Peers.Ticket = addr
			if err := CheckPeer(c, Ticket); err != nil {
				t.Fatalf("CheckPeer: %v", err)
			}
			g, err := NewGroup(GroupOptions{Config: c, Roles: []string{Edge}, Constructors: ctors(&journal{}, "", nil)})
			if err != nil {
				t.Fatal(err)
			}
			cc, err := g.Conn(Ticket)
			if err != nil {
				t.Fatalf("Conn: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a bound, not a measure
			defer cancel()
			err = cc.Invoke(ctx, "/segmesh.test.v1.Nothing/Call", &emptypb.Empty{}, &emptypb.Empty{}, grpc.WaitForReady(true))
			if status.Code(err) != codes.Unimplemented {
				t.Fatalf("a call to %s: %v, want Unimplemented (it reached the server)", addr, err)
			}
		})
	}
}
