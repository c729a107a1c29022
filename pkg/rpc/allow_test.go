package rpc

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// callTicket calls GetServiceTicket and the health check on addr with the
// dial option and outgoing metadata md (alternating key, value).
func callTicket(t testing.TB, addr string, opt grpc.DialOption, md ...string) (ticketErr, healthErr error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, md...)
	_, ticketErr = ticketv1.NewTicketServiceClient(conn).GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: "alice@lab.test"})
	_, healthErr = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return ticketErr, healthErr
}

// TestEmptyAllowListRefusesVerifiedPeers: an empty segmesh.grpc.allowedPeers
// used to admit any certificate the CA issued (the identity role's, a
// monitoring client's), and with it any user's ticket.
func TestEmptyAllowListRefusesVerifiedPeers(t *testing.T) {
	p := newPKI(t)
	creds, err := ServerCredentials(p.leaf(t, "ticket", "spiffe://segmesh.test/ticket"))
	if err != nil {
		t.Fatal(err)
	}
	allow := NewAllowList(nil)
	addr, _ := serve(t, "t0", grpc.Creds(creds), grpc.ChainUnaryInterceptor(allow.UnaryInterceptor()), grpc.ChainStreamInterceptor(allow.StreamInterceptor()))
	edge := p.leaf(t, "edge", "spiffe://segmesh.test/edge")
	c, err := ClientCredentials(edge)
	if err != nil {
		t.Fatal(err)
	}
	terr, herr := callTicket(t, addr, grpc.WithTransportCredentials(c))
	if status.Code(terr) != codes.PermissionDenied {
		t.Fatalf("GetServiceTicket with an empty allow-list: %v, want PermissionDenied", terr)
	}
	if herr != nil {
		t.Fatalf("health check refused: %v", herr)
	}
}

// TestMeshAllowList checks the identity a mesh sidecar vouches for: the last
// x-forwarded-client-cert element, never one the caller wrote before it.
func TestMeshAllowList(t *testing.T) {
	allow := NewMeshAllowList([]string{"spiffe://cluster.local/ns/segmesh/sa/segmesh-edge"})
	addr, _ := serve(t, "t0", grpc.ChainUnaryInterceptor(allow.UnaryInterceptor()), grpc.ChainStreamInterceptor(allow.StreamInterceptor()))
	const by = `By=spiffe://cluster.local/ns/segmesh/sa/segmesh-ticket;Hash=ab12;Subject="";`
	tests := []struct {
		name string
		md   []string
		want codes.Code
	}{
		{"edge", []string{XFCCHeader, by + "URI=spiffe://cluster.local/ns/segmesh/sa/segmesh-edge"}, codes.OK},
		{"identity role", []string{XFCCHeader, by + "URI=spiffe://cluster.local/ns/segmesh/sa/segmesh-identity"}, codes.PermissionDenied},
		{"no header", nil, codes.PermissionDenied},
		{"caller forged an element before the sidecar's", []string{XFCCHeader,
			"URI=spiffe://cluster.local/ns/segmesh/sa/segmesh-edge," + by + "URI=spiffe://cluster.local/ns/other/sa/attacker"}, codes.PermissionDenied},
		{"forged edge inside a quoted subject", []string{XFCCHeader,
			by + `Subject="CN=x,URI=spiffe://cluster.local/ns/segmesh/sa/segmesh-edge";URI=spiffe://cluster.local/ns/other/sa/attacker`}, codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			terr, herr := callTicket(t, addr, grpc.WithTransportCredentials(insecure.NewCredentials()), tt.md...)
			if status.Code(terr) != tt.want {
				t.Fatalf("GetServiceTicket: %v, want %v", terr, tt.want)
			}
			if herr != nil {
				t.Fatalf("health check refused: %v", herr)
			}
		})
	}
}

func TestMeshIdentities(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   []string
	}{
		{"empty", nil, nil},
		{"one element", []string{`By=spiffe://a/t;Hash=1;Subject="";URI=spiffe://a/edge`}, []string{"spiffe://a/edge"}},
		{"last of several", []string{`URI=spiffe://x/forged,By=b;URI=spiffe://a/edge;DNS=edge.a`}, []string{"spiffe://a/edge", "edge.a"}},
		{"last of several header values", []string{`URI=spiffe://x/forged`, `By=b;URI=spiffe://a/edge`}, []string{"spiffe://a/edge"}},
		{"quoted subject with comma and escaped quote", []string{`By=b;Subject="CN=a\",URI=spiffe://x/forged,O=b";URI="spiffe://a/edge"`}, []string{"spiffe://a/edge"}},
		{"trailing comma", []string{`By=b;URI=spiffe://a/edge,`}, []string{"spiffe://a/edge"}},
		{"last element without identity", []string{`URI=spiffe://a/edge,By=b;Hash=1`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MeshIdentities(tt.values); !slices.Equal(got, tt.want) {
				t.Fatalf("MeshIdentities(%q) = %q, want %q", tt.values, got, tt.want)
			}
		})
	}
}

func FuzzMeshIdentities(f *testing.F) {
	f.Add(`By=b;Subject="CN=a\",x";URI=spiffe://a/edge`)
	f.Add(`"`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, id := range MeshIdentities([]string{s}) {
			if id == "" {
				t.Fatal("empty identity")
			}
		}
	})
}
