package rpc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
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
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// pki mints a CA and leaf certificates into a directory.
type pki struct {
	dir    string
	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "segmesh test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), caKey: key, caCert: cert}
	writePEM(t, filepath.Join(p.dir, "ca.pem"), "CERTIFICATE", der)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// leaf mints name.pem/name.key with a URI SAN (when uri != "") and 127.0.0.1.
func (p *pki) leaf(t *testing.T, name, uri string) TLSFiles {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{name + ".segmesh.test"}}
	if uri != "" {
		u, _ := url.Parse(uri)
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	f := TLSFiles{CertFile: filepath.Join(p.dir, name+".pem"), KeyFile: filepath.Join(p.dir, name+".key"), CAFile: filepath.Join(p.dir, "ca.pem")}
	writePEM(t, f.CertFile, "CERTIFICATE", der)
	writePEM(t, f.KeyFile, "PRIVATE KEY", kder)
	return f
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

	call := func(files *TLSFiles) (*ticketv1.GetServiceTicketResponse, error, error) {
		var opt grpc.DialOption
		if files == nil {
			opt = grpc.WithTransportCredentials(insecure.NewCredentials())
		} else {
			c, err := ClientCredentials(*files)
			if err != nil {
				t.Fatal(err)
			}
			opt = grpc.WithTransportCredentials(c)
		}
		conn, err := grpc.NewClient(addr, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := ticketv1.NewTicketServiceClient(conn).GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: "alice@lab.test"})
		_, herr := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return resp, err, herr
	}
	edge := p.leaf(t, "edge", "spiffe://segmesh.test/edge")
	if _, err, _ := call(&edge); err != nil {
		t.Fatalf("edge refused: %v", err)
	}
	ident := p.leaf(t, "identity", "spiffe://segmesh.test/identity")
	_, err, herr := call(&ident)
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("identity calling ticket: %v, want PermissionDenied", err)
	}
	if herr != nil {
		t.Fatalf("health check refused for a verified peer: %v", herr)
	}
	if _, err, _ := call(nil); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext caller: %v, want a failed handshake", err)
	}
	other := newPKI(t).leaf(t, "edge", "spiffe://segmesh.test/edge")
	other.CAFile = edge.CAFile // trusts our server, but its own cert is from another CA
	if _, err, _ := call(&other); err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}
}

// TestRingHashAffinity checks that each user sticks to one replica, that a
// replica leaving re-hashes only its own users, and that its users are served
// by the others.
func TestRingHashAffinity(t *testing.T) {
	var addrs []string
	servers := map[string]*grpc.Server{}
	for i := range 3 {
		a, s := serve(t, fmt.Sprintf("r%d", i))
		addrs = append(addrs, a)
		servers[fmt.Sprintf("r%d", i)] = s
	}
	r := manual.NewBuilderWithScheme("segmesh-test")
	state := func(as []string) resolver.State {
		var st resolver.State
		for _, a := range as {
			st.Addresses = append(st.Addresses, resolver.Address{Addr: a})
		}
		return st
	}
	r.InitialState(state(addrs))
	conn, err := grpc.NewClient(r.Scheme()+":///ticket", append(TicketDialOptions(), grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	cl := ticketv1.NewTicketServiceClient(conn)
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
