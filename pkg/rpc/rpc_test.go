package rpc

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/internal/testpki"
	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// pki mints a CA and leaf certificates into a directory.
type pki struct {
	dir    string
	ca     *testpki.Cert
	caFile string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir(), ca: testpki.NewCA(t, "segmesh test CA")}
	p.caFile = filepath.Join(p.dir, "ca.pem")
	if err := os.WriteFile(p.caFile, p.ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// leaf mints name.pem/name.key for both TLS sides, with a URI SAN (when
// uri != ""), 127.0.0.1 and name.segmesh.test.
func (p *pki) leaf(t *testing.T, name, uri string) TLSFiles {
	t.Helper()
	opts := []testpki.Option{
		testpki.EKU(x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth),
		testpki.IP(net.IPv4(127, 0, 0, 1)), testpki.DNS(name + ".segmesh.test"),
	}
	if uri != "" {
		opts = append(opts, testpki.URI(uri))
	}
	certFile, keyFile := p.ca.Issue(t, name, opts...).WriteFiles(t, p.dir, name)
	return TLSFiles{CertFile: certFile, KeyFile: keyFile, CAFile: p.caFile}
}

// echoTicket answers GetServiceTicket with its own name as the client name.
type echoTicket struct {
	ticketv1.UnimplementedTicketServiceServer
	name string
}

func (e echoTicket) GetServiceTicket(ctx context.Context, r *ticketv1.GetServiceTicketRequest) (*ticketv1.GetServiceTicketResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	return &ticketv1.GetServiceTicketResponse{ClientName: e.name, ClientRealm: fmt.Sprint(md.Get(UserHashHeader))}, nil
}

func serve(t *testing.T, name string, opts ...grpc.ServerOption) (string, *grpc.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	ticketv1.RegisterTicketServiceServer(s, echoTicket{name: name})
	healthpb.RegisterHealthServer(s, health.NewServer())
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String(), s
}

func TestMTLSAllowList(t *testing.T) {
	p := newPKI(t)
	srvFiles := p.leaf(t, "ticket", "spiffe://segmesh.test/ticket")
	creds, err := ServerCredentials(srvFiles)
	if err != nil {
		t.Fatal(err)
	}
	allow := NewAllowList([]string{"spiffe://segmesh.test/edge"})
	addr, _ := serve(t, "t0", grpc.Creds(creds), grpc.ChainUnaryInterceptor(allow.UnaryInterceptor()), grpc.ChainStreamInterceptor(allow.StreamInterceptor()))

	call := func(files *TLSFiles) (ticketErr, healthErr error) {
		opt := grpc.WithTransportCredentials(insecure.NewCredentials())
		if files != nil {
			c, err := ClientCredentials(*files)
			if err != nil {
				t.Fatal(err)
			}
			opt = grpc.WithTransportCredentials(c)
		}
		return callTicket(t, addr, opt)
	}
	edge := p.leaf(t, "edge", "spiffe://segmesh.test/edge")
	if err, _ := call(&edge); err != nil {
		t.Fatalf("edge refused: %v", err)
	}
	ident := p.leaf(t, "identity", "spiffe://segmesh.test/identity")
	err, herr := call(&ident)
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("identity calling ticket: %v, want PermissionDenied", err)
	}
	if herr != nil {
		t.Fatalf("health check refused for a verified peer: %v", herr)
	}
	if err, _ := call(nil); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext caller: %v, want a failed handshake", err)
	}
	other := newPKI(t).leaf(t, "edge", "spiffe://segmesh.test/edge")
	other.CAFile = edge.CAFile // trusts our server, but its own cert is from another CA
	if err, _ := call(&other); err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}
}

// TestRingHashAffinity checks that each user sticks to one replica, that a
// replica leaving re-hashes only its own users, and that its users are served
// by the others.
func TestRingHashAffinity(t *testing.T) {
	rs := newReplicaSet(t, "segmesh-test", TicketDialOptions())
	addrs, servers, r, cl := rs.addrs, rs.servers, rs.r, rs.client
	state := func(as []string) resolver.State { return resolverState(as...) }
	where := func(user string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cl.GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: user}, grpc.WaitForReady(true))
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		return resp.ClientName
	}
	before := map[string]string{}
	used := map[string]int{}
	for i := range 60 {
		u := fmt.Sprintf("User%03d@lab.test", i)
		before[u] = where(u)
		used[before[u]]++
		for range 3 {
			if got := where(u); got != before[u] {
				t.Fatalf("%s moved from %s to %s", u, before[u], got)
			}
		}
	}
	if len(used) < 2 {
		t.Fatalf("all users on one replica: %v", used)
	}
	// Case does not change the replica: UPNs are case-insensitive.
	if where("USER001@LAB.TEST") != before["User001@lab.test"] {
		t.Fatal("the same user in another case went to another replica")
	}
	// r1 leaves: all its users move to the others. gRPC's ring gives each
	// host ringSize/N points, so the survivors gain points and a few of their
	// own users move between them too; bound that share.
	servers["r1"].Stop()
	r.UpdateState(state([]string{addrs[0], addrs[2]}))
	otherMoved, others := 0, 0
	for u, was := range before {
		now := where(u)
		if was == "r1" {
			if now == "r1" {
				t.Fatalf("%s still on the stopped replica", u)
			}
			continue
		}
		others++
		if now != was {
			otherMoved++
		}
	}
	t.Logf("replica r1 left: its %d users moved; %d of the other %d users moved too", used["r1"], otherMoved, others)
	if otherMoved*4 > others {
		t.Fatalf("%d of %d users of the remaining replicas moved: more than a quarter", otherMoved, others)
	}
}
