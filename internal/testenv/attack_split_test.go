package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/internal/testpoll"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/rpc"
	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

var grpcAddrRe = regexp.MustCompile(`grpc listening for other segmesh processes" addr=(\S+)`)

// TestAttackTicketRoleWithoutBeingTheEdge: in split mode an attacker who
// reaches the ticket role's port asks for alice's ticket: in plaintext,
// in plaintext with a forged mesh header naming the edge, and over TLS with
// a certificate naming the edge's identity from a CA of its own.
func TestAttackTicketRoleWithoutBeingTheEdge(t *testing.T) {
	e := Start(t, Split)
	var addr string
	// The log reaches the buffer a moment after the process is ready.
	testpoll.Within(10*time.Second, func() bool {
		for _, p := range e.procs {
			if p.roles == role.Ticket {
				if m := grpcAddrRe.FindStringSubmatch(p.logs.String()); m != nil {
					addr = m[1]
				}
			}
		}
		return addr != ""
	})
	if addr == "" {
		t.Fatalf("the ticket role's gRPC address is not in its log:\n%s", e.Logs())
	}
	rogue := testpki.NewCA(t, "attacker CA")
	leaf := rogue.Issue(t, "segmesh-edge", testpki.IP(net.IPv4(127, 0, 0, 1)), testpki.URI("spiffe://testenv/segmesh/edge"),
		testpki.EKU(x509.ExtKeyUsageClientAuth))
	tlsCreds := credentials.NewTLS(&tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{leaf.TLS()}}) //nolint:gosec // the attacker does not care who the server is
	attempts := []struct {
		name  string
		creds credentials.TransportCredentials
		md    []string
	}{
		{"plaintext", insecure.NewCredentials(), nil},
		{"plaintext with a mesh header naming the edge", insecure.NewCredentials(), []string{rpc.XFCCHeader, "By=x;URI=spiffe://testenv/segmesh/edge"}},
		{"edge identity from the attacker's CA", tlsCreds, nil},
	}
	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(a.creds))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ctx = metadata.AppendToOutgoingContext(ctx, a.md...)
			resp, err := ticketv1.NewTicketServiceClient(conn).GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: "alice@test.realm"})
			if err == nil {
				t.Fatalf("the ticket role answered: client %s@%s", resp.GetClientName(), resp.GetClientRealm())
			}
			if strings.Contains(err.Error(), "connection refused") {
				t.Fatalf("nothing listens on %s: the attack did not reach the ticket role: %v", addr, err)
			}
		})
	}
}
