//go:build lab

package split

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	"github.com/segmesh/segmesh/pkg/rpc"
	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// ringClient is a ticket client set up as the edge's: the same DNS target,
// rendezvous hashing on x-segmesh-user, the edge's certificate.
func ringClient(t *testing.T, c *cluster) ticketv1.TicketServiceClient {
	t.Helper()
	creds, err := rpc.ClientCredentials(rpc.TLSFiles{CertFile: c.certs["edge"].Cert, KeyFile: c.certs["edge"].Key, CAFile: c.ca.File})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("dns:///"+net.JoinHostPort(ticketName, grpcPort), append(rpc.TicketDialOptions(), grpc.WithTransportCredentials(creds))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return ticketv1.NewTicketServiceClient(cc)
}

// owners asks the ring for each user's ticket and returns the replica
// address that answered for each user and the users whose answer did not
// come from that replica's cache. While the replicas that issued the
// tickets run, it only reads caches: no KDC exchange.
func owners(t *testing.T, c *cluster, devices []*device) (owner map[string]string, notCached []string) {
	t.Helper()
	client := ringClient(t, c)
	owner = map[string]string{}
	for _, d := range devices {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var p peer.Peer
		r, err := client.GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: d.User + "@lab.test"}, grpc.Peer(&p))
		cancel()
		if err != nil {
			t.Fatalf("GetServiceTicket for %s through the ring: %v", d.User, err)
		}
		owner[d.User] = p.Addr.String()
		if !r.GetCached() {
			notCached = append(notCached, d.User)
		}
	}
	return owner, notCached
}

// placement returns the replica address the ring picks for each user,
// without side effects: it sends Invalidate for an SPN that is not
// configured, which the ticket role answers without touching its cache.
func placement(t *testing.T, c *cluster, devices []*device) map[string]string {
	t.Helper()
	client := ringClient(t, c)
	out := map[string]string{}
	for _, d := range devices {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var p peer.Peer
		r, err := client.Invalidate(ctx, &ticketv1.InvalidateRequest{UserPrincipal: d.User + "@lab.test", TargetSpn: "HTTP/placement-probe.invalid"}, grpc.Peer(&p))
		cancel()
		if err != nil {
			t.Fatalf("Invalidate probe for %s through the ring: %v", d.User, err)
		}
		if r.GetRemoved() != 0 {
			t.Fatalf("the placement probe removed %d tickets of %s", r.GetRemoved(), d.User)
		}
		out[d.User] = p.Addr.String()
	}
	return out
}
