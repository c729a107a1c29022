package rpc

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// TestMeshAllowListUnbalancedQuoteSmuggling: the caller writes an
// x-forwarded-client-cert element that opens a double quote and never closes
// it; Envoy (APPEND_FORWARD) appends its own element after a comma. The
// comma then sits inside the caller's quote, so the caller's element and the
// sidecar's parse as one "last element", and the caller's URI (the edge's)
// is read as the identity the sidecar vouches for.
func TestMeshAllowListUnbalancedQuoteSmuggling(t *testing.T) {
	const edge = "spiffe://cluster.local/ns/segmesh/sa/segmesh-edge"
	const sidecar = `By=spiffe://cluster.local/ns/segmesh/sa/segmesh-ticket;Hash=ab12;Subject="";URI=spiffe://cluster.local/ns/other/sa/attacker`
	forged := []string{
		`URI=` + edge + `;DNS="x`,               // open quote swallows the comma
		`URI=` + edge + `;DNS="x\`,              // ... and an escape on the comma
		`By=a;URI=` + edge + `;Subject="CN=a\"`, // escaped quote keeps the quote open
		`URI="` + edge,                          // the URI itself left open
	}
	allow := NewMeshAllowList([]string{edge})
	addr, _ := serve(t, "t0", grpc.ChainUnaryInterceptor(allow.UnaryInterceptor()), grpc.ChainStreamInterceptor(allow.StreamInterceptor()))
	for _, f := range forged {
		t.Run(f, func(t *testing.T) {
			// As a header with two values and as one joined by the proxy.
			if ids := MeshIdentities([]string{f, sidecar}); slices.Contains(ids, edge) {
				t.Errorf("MeshIdentities = %q: the caller's edge identity was read from the sidecar's element", ids)
			}
			for _, md := range [][]string{{XFCCHeader, f, XFCCHeader, sidecar}, {XFCCHeader, f + "," + sidecar}} {
				terr, _ := callTicket(t, addr, grpc.WithTransportCredentials(insecure.NewCredentials()), md...)
				if status.Code(terr) != codes.PermissionDenied {
					t.Errorf("metadata %q: GetServiceTicket %v, want PermissionDenied", md, terr)
				}
			}
		})
	}
}

// TestAllowListIgnoresMeshHeaderWithMTLS: with segmesh's own mTLS the
// identity is the verified certificate's; a caller whose certificate is not
// allowed cannot name the edge in x-forwarded-client-cert instead.
func TestAllowListIgnoresMeshHeaderWithMTLS(t *testing.T) {
	p := newPKI(t)
	creds, err := ServerCredentials(p.leaf(t, "ticket", "spiffe://segmesh.test/ticket"))
	if err != nil {
		t.Fatal(err)
	}
	allow := NewAllowList([]string{"spiffe://segmesh.test/edge"})
	addr, _ := serve(t, "t0", grpc.Creds(creds), grpc.ChainUnaryInterceptor(allow.UnaryInterceptor()), grpc.ChainStreamInterceptor(allow.StreamInterceptor()))
	c, err := ClientCredentials(p.leaf(t, "identity", "spiffe://segmesh.test/identity"))
	if err != nil {
		t.Fatal(err)
	}
	terr, _ := callTicket(t, addr, grpc.WithTransportCredentials(c), XFCCHeader, "By=x;URI=spiffe://segmesh.test/edge")
	if status.Code(terr) != codes.PermissionDenied {
		t.Fatalf("identity's certificate with a forged mesh header: %v, want PermissionDenied", terr)
	}
}

// TestHealthExemptionDoesNotReachOtherServices: health checks skip the
// allow-list by method prefix; a path that starts with the health service
// but names the ticket method must not reach GetServiceTicket.
func TestHealthExemptionDoesNotReachOtherServices(t *testing.T) {
	p := newPKI(t)
	creds, err := ServerCredentials(p.leaf(t, "ticket", "spiffe://segmesh.test/ticket"))
	if err != nil {
		t.Fatal(err)
	}
	allow := NewAllowList([]string{"spiffe://segmesh.test/edge"})
	addr, _ := serve(t, "t0", grpc.Creds(creds), grpc.ChainUnaryInterceptor(allow.UnaryInterceptor()), grpc.ChainStreamInterceptor(allow.StreamInterceptor()))
	c, err := ClientCredentials(p.leaf(t, "identity", "spiffe://segmesh.test/identity"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(c))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	for _, m := range []string{
		"/grpc.health.v1.Health/../segmesh.ticket.v1.TicketService/GetServiceTicket",
		"/grpc.health.v1.Health/Check/../../segmesh.ticket.v1.TicketService/GetServiceTicket",
		"/grpc.health.v1.Health//segmesh.ticket.v1.TicketService/GetServiceTicket",
		"/grpc.health.v1.Health/%2F..%2Fsegmesh.ticket.v1.TicketService/GetServiceTicket",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out := new(ticketv1.GetServiceTicketResponse)
		err := conn.Invoke(ctx, m, &ticketv1.GetServiceTicketRequest{UserPrincipal: "alice@lab.test"}, out)
		cancel()
		if err == nil || out.GetClientName() != "" {
			t.Errorf("%s: served (%q) to a caller not on the allow-list", m, out.GetClientName())
		}
	}
}

// TestMeshAllowListFoldsASCIIOnly: identities are compared without regard
// to ASCII case, but Unicode case mapping must not make a different name
// match: strings.ToLower maps the Kelvin sign U+212A to "k" and U+0130 to
// "i", so a mesh identity ".../sa/\u212Aiosk-edge" passed for
// ".../sa/kiosk-edge". (x509 SANs are ASCII; x-forwarded-client-cert is
// whatever the header carries.)
func TestMeshAllowListFoldsASCIIOnly(t *testing.T) {
	allow := NewMeshAllowList([]string{"spiffe://cluster.local/ns/segmesh/sa/kiosk-edge", "spiffe://cluster.local/ns/segmesh/sa/edge-i"})
	tests := []struct {
		uri  string
		want codes.Code
	}{
		{"spiffe://cluster.local/ns/segmesh/sa/kiosk-edge", codes.OK},
		{"SPIFFE://cluster.local/ns/segmesh/sa/KIOSK-edge", codes.OK},
		{"spiffe://cluster.local/ns/segmesh/sa/\u212aiosk-edge", codes.PermissionDenied},
		{"spiffe://cluster.local/ns/segmesh/sa/edge-\u0130", codes.PermissionDenied},
	}
	for _, tt := range tests {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(XFCCHeader, "By=x;URI="+tt.uri))
		if got := status.Code(allow.check(ctx, "/segmesh.ticket.v1.TicketService/GetServiceTicket")); got != tt.want {
			t.Errorf("URI %q: %v, want %v", tt.uri, got, tt.want)
		}
	}
}
