package rpc

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	_ "google.golang.org/grpc/balancer/ringhash" // registers ring_hash_experimental
	"google.golang.org/grpc/metadata"
)

// UserHashHeader carries the user a ticket request is for; the balancer
// hashes on it, so one user's requests reach one ticket replica.
const UserHashHeader = "x-segmesh-user"

// ticketRetryPolicy retries a ticket call that fails UNAVAILABLE (a replica
// that died mid-call) up to twice more; the balancer then sends it to the
// user's next replica.
const ticketRetryPolicy = `"methodConfig":[{"name":[{"service":"segmesh.ticket.v1.TicketService"}],"retryPolicy":{"maxAttempts":3,` +
	`"initialBackoff":"0.05s","maxBackoff":"0.5s","backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}}]`

// TicketServiceConfig is the gRPC service config of the edge's connection to
// the ticket replicas: rendezvous hashing on UserHashHeader (hrw.go), which
// moves only a departing replica's users, and the retry policy.
const TicketServiceConfig = `{"loadBalancingConfig":[{"` + HRWBalancerName + `":{}}],` + ticketRetryPolicy + `}`

// RingHashServiceConfig is the service config segmesh used before
// TicketServiceConfig: gRPC's ring_hash with UserHashHeader as the request
// hash key (gRFC A76). It stays for the comparison in TestUserHashMoves:
// when a replica leaves, ring_hash also moves some of the others' users.
const RingHashServiceConfig = `{"loadBalancingConfig":[{"ring_hash_experimental":{"requestHashHeader":"` + UserHashHeader + `"}}],` +
	ticketRetryPolicy + `}`

// userRequest is what ticket requests look like to the affinity interceptor.
type userRequest interface {
	GetUserPrincipal() string
}

// AffinityInterceptor puts the request's user (lower-cased: UPNs are
// case-insensitive) into UserHashHeader.
func AffinityInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if r, ok := req.(userRequest); ok && r.GetUserPrincipal() != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, UserHashHeader, strings.ToLower(r.GetUserPrincipal()))
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// TicketDialOptions returns the options for a connection to the ticket
// role's replicas: rendezvous hashing on the user, and the affinity
// interceptor.
// Point it at a target that resolves to every replica (dns:///ticket-headless:9443).
func TicketDialOptions() []grpc.DialOption {
	registerHRW()
	return []grpc.DialOption{
		grpc.WithDefaultServiceConfig(TicketServiceConfig),
		grpc.WithChainUnaryInterceptor(AffinityInterceptor()),
	}
}
