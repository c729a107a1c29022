package rpc

import (
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/metadata"
)

// Rendezvous (highest random weight) hashing of users onto ticket replicas.
//
// gRPC's ring_hash places each replica at ringSize/N points of a ring; when
// one of three leaves, the survivors are re-placed at ringSize/2 points
// each, so besides the leaver's users about 15 % of the others move between
// the survivors too, and each of them costs the KDC an S4U pair on its new
// replica (pkg/rpc TestUserHashMoves, docs/benchmarks.md). Rendezvous
// hashing (Thaler and Ravishankar, 1998) scores every (user, replica) pair
// and sends the user to the replica with the highest score: a replica that
// leaves takes only its own users with it (each goes to its second-best),
// and one that comes back, at the same address, takes back exactly those.
// The cost is one short hash per ready replica per call (a few replicas:
// tens of nanoseconds). gRPC ships no rendezvous balancer, hence this one,
// built on grpc/balancer/base (which keeps a SubConn per address and hands
// the picker the ready ones).

// HRWBalancerName is the name the rendezvous balancer registers under.
const HRWBalancerName = "segmesh_user_hrw"

// hrwRegistered registers the balancer once: gRPC looks balancers up by
// name in its process-wide registry, the one global this package keeps
// (ring_hash registers itself the same way, from an init function).
var hrwRegistered sync.Once

// registerHRW makes HRWBalancerName known to gRPC; TicketDialOptions calls it.
func registerHRW() {
	hrwRegistered.Do(func() {
		balancer.Register(base.NewBalancerBuilder(HRWBalancerName, hrwPickerBuilder{}, base.Config{HealthCheck: true}))
	})
}

// hrwPickerBuilder builds a picker over the ready replicas.
type hrwPickerBuilder struct{}

func (hrwPickerBuilder) Build(info base.PickerBuildInfo) balancer.Picker {
	if len(info.ReadySCs) == 0 {
		return base.NewErrPicker(balancer.ErrNoSubConnAvailable)
	}
	p := &hrwPicker{}
	for sc, sci := range info.ReadySCs {
		p.subConns = append(p.subConns, sc)
		p.addrs = append(p.addrs, sci.Address.Addr)
	}
	return p
}

// hrwPicker sends a call to the ready replica with the highest score for
// the call's UserHashHeader; a call without one goes to any ready replica.
type hrwPicker struct {
	subConns []balancer.SubConn
	addrs    []string // addrs[i] is subConns[i]'s address
}

func (p *hrwPicker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	users := metadata.ValueFromOutgoingContext(info.Ctx, UserHashHeader)
	if len(users) == 0 || users[0] == "" {
		return balancer.PickResult{SubConn: p.subConns[rand.IntN(len(p.subConns))]}, nil
	}
	return balancer.PickResult{SubConn: p.subConns[HRWIndex(users[0], p.addrs)]}, nil
}

// HRWIndex returns the index in replicas of the one rendezvous hashing
// gives user: the highest hrwScore, ties to the smaller address. The user is
// compared case-insensitively (UPNs are). It panics on an empty list.
func HRWIndex(user string, replicas []string) int {
	user = strings.ToLower(user)
	best, bestScore := 0, uint64(0)
	for i, r := range replicas {
		s := hrwScore(user, r)
		if i == 0 || s > bestScore || (s == bestScore && r < replicas[best]) {
			best, bestScore = i, s
		}
	}
	return best
}

// hrwScore is the weight of (user, replica): FNV-1a over both, then the
// SplitMix64 finaliser, since FNV's high bits mix poorly for short keys
// that differ only at the end.
func hrwScore(user, replica string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(user))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(replica))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
