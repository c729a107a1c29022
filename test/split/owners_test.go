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

// owners asks the ticket replicas, through a client set up as the edge's
// (same DNS target, ring_hash on x-segmesh-user, the edge's certificate),
// for each user's ticket, and returns the replica address that answered for
// each user and the users whose answer did not come from that replica's
// cache. Called while every replica runs, it only reads caches: a user whose
// ticket the replica its hash picks already holds costs no KDC exchange.
func owners(t *testing.T, c *cluster, devices []*device) (owner map[string]string, notCached []string) {
	t.Helper()
	creds, err := rpc.ClientCredentials(rpc.TLSFiles{CertFile: c.certs["edge"].Cert, KeyFile: c.certs["edge"].Key, CAFile: c.ca.File})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("dns:///"+net.JoinHostPort(ticketName, grpcPort), append(rpc.TicketDialOptions(), grpc.WithTransportCredentials(creds))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := ticketv1.NewTicketServiceClient(cc)
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
