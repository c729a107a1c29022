package rpc

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
)

// Rendezvous (highest random weight) hashing of users onto ticket replicas.
//
// gRPC's ring_hash places each replica at ringSize/N points of a ring; when
// one of three leaves, the survivors are re-placed at ringSize/2 points
// each, so besides the leaver's users about a tenth of the others move
// between the survivors too, and each of them costs the KDC an S4U pair on
// its new replica (TestTicketReplicaLeaveMovesOnlyItsUsers,
// docs/benchmarks.md). Rendezvous hashing (Thaler and Ravishankar, 1998)
// scores every (user, replica) pair and sends the user to the replica with
// the highest score: a replica that leaves takes only its own users with it
// (each goes to its second best), and one that comes back at the same
// address takes back exactly those.
//
// The balancer keeps one SubConn per replica address and always connected
// (a few replicas, all hot). A user's call goes to its best replica; while
// that one is connecting for the first time, or again after being ready, the
// call waits for it (as ring_hash does) rather than visit another replica and
// cost a KDC exchange there; once it failed, calls go to the next best until
// it is ready again. The cost is one short hash per replica per call (tens of
// nanoseconds for a few). gRPC ships no rendezvous balancer, hence this one.

// HRWBalancerName is the name the rendezvous balancer registers under.
const HRWBalancerName = "segmesh_user_hrw"

// hrwRegistered registers the balancer once: gRPC looks balancers up by
// name in its process-wide registry, the one global this package keeps
// (ring_hash registers itself the same way, from an init function).
var hrwRegistered sync.Once

// registerHRW makes HRWBalancerName known to gRPC; TicketDialOptions calls it.
func registerHRW() {
	hrwRegistered.Do(func() { balancer.Register(hrwBuilder{}) })
}

type hrwBuilder struct{}

func (hrwBuilder) Name() string { return HRWBalancerName }

func (hrwBuilder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	return &hrwBalancer{cc: cc, replicas: map[string]*hrwReplica{}}
}

// hrwReplica is one replica address and its SubConn's state.
type hrwReplica struct {
	addr  string
	sc    balancer.SubConn
	state connectivity.State
	// failed: the last connection attempt failed and none succeeded since;
	// calls then go to the next best replica.
	failed bool
	err    error
}

// hrwBalancer is the balancer. gRPC calls its methods and the SubConns'
// state listeners from one goroutine, so it needs no lock; the picker it
// hands over is immutable.
type hrwBalancer struct {
	cc       balancer.ClientConn
	replicas map[string]*hrwReplica
	resolver error
}

func (b *hrwBalancer) UpdateClientConnState(s balancer.ClientConnState) error {
	b.resolver = nil
	want := map[string]resolver.Address{}
	for _, ep := range s.ResolverState.Endpoints {
		if len(ep.Addresses) > 0 {
			want[ep.Addresses[0].Addr] = ep.Addresses[0]
		}
	}
	for _, a := range s.ResolverState.Addresses {
		want[a.Addr] = a
	}
	for addr, r := range b.replicas {
		if _, ok := want[addr]; !ok {
			r.sc.Shutdown()
			delete(b.replicas, addr)
		}
	}
	for addr, a := range want {
		if _, ok := b.replicas[addr]; ok {
			continue
		}
		r := &hrwReplica{addr: addr, state: connectivity.Idle}
		// The deprecation notice only warns that a SubConn will take one
		// address; this one does, and gRPC has no other way to make one.
		//lint:ignore SA1019 one address per SubConn, as the notice asks
		sc, err := b.cc.NewSubConn([]resolver.Address{a}, balancer.NewSubConnOptions{StateListener: func(st balancer.SubConnState) { b.subConnState(r, st) }})
		if err != nil {
			return fmt.Errorf("rpc: ticket replica %s: %w", addr, err)
		}
		r.sc = sc
		b.replicas[addr] = r
		sc.Connect()
	}
	if len(b.replicas) == 0 {
		b.resolver = errors.New("rpc: the ticket role's address resolves to no replica")
		b.publish()
		return balancer.ErrBadResolverState
	}
	b.publish()
	return nil
}

func (b *hrwBalancer) subConnState(r *hrwReplica, st balancer.SubConnState) {
	if b.replicas[r.addr] != r {
		return // removed
	}
	r.state = st.ConnectivityState
	switch st.ConnectivityState {
	case connectivity.Ready:
		r.failed, r.err = false, nil
	case connectivity.TransientFailure:
		r.failed, r.err = true, st.ConnectionError
	case connectivity.Idle:
		r.sc.Connect()
	case connectivity.Shutdown:
		return
	}
	b.publish()
}

// publish hands gRPC a new picker and the aggregate state.
func (b *hrwBalancer) publish() {
	p := &hrwPicker{}
	agg := connectivity.TransientFailure
	var lastErr error = b.resolver
	for _, r := range b.replicas {
		p.replicas = append(p.replicas, hrwChoice{addr: r.addr, sc: r.sc, ready: r.state == connectivity.Ready,
			wait: r.state != connectivity.Ready && r.state != connectivity.TransientFailure && !r.failed})
		switch {
		case r.state == connectivity.Ready:
			agg = connectivity.Ready
		case agg != connectivity.Ready && (r.state == connectivity.Connecting || r.state == connectivity.Idle):
			agg = connectivity.Connecting
		}
		if r.err != nil {
			lastErr = r.err
		}
	}
	p.err = status.Errorf(codes.Unavailable, "rpc: no ticket replica reachable (last error: %v)", lastErr)
	b.cc.UpdateState(balancer.State{ConnectivityState: agg, Picker: p})
}

func (b *hrwBalancer) ResolverError(err error) {
	if len(b.replicas) == 0 {
		b.resolver = err
		b.publish()
	}
}

// UpdateSubConnState is not used: each SubConn has a StateListener.
func (b *hrwBalancer) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

func (b *hrwBalancer) Close() {
	for _, r := range b.replicas {
		r.sc.Shutdown()
	}
	b.replicas = map[string]*hrwReplica{}
}

// ExitIdle does nothing: the SubConns reconnect as soon as they go idle.
func (b *hrwBalancer) ExitIdle() {}

// hrwChoice is a replica as the picker sees it.
type hrwChoice struct {
	addr string
	sc   balancer.SubConn
	// ready: calls go there; wait: not ready, but calls wait for it rather
	// than go to the next best (connecting, not failed).
	ready, wait bool
}

// hrwPicker sends a call to the best replica for the call's UserHashHeader
// that is ready, waiting for a better one still connecting; a call without
// a user goes to any ready replica.
type hrwPicker struct {
	replicas []hrwChoice
	err      error
}

func (p *hrwPicker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	users := metadata.ValueFromOutgoingContext(info.Ctx, UserHashHeader)
	if len(users) == 0 || users[0] == "" {
		var ready []balancer.SubConn
		for _, c := range p.replicas {
			if c.ready {
				ready = append(ready, c.sc)
			}
		}
		if len(ready) == 0 {
			return p.none()
		}
		return balancer.PickResult{SubConn: ready[rand.IntN(len(ready))]}, nil
	}
	user := strings.ToLower(users[0])
	tried := make([]bool, len(p.replicas))
	for range p.replicas {
		best := -1
		var bestScore uint64
		for i, c := range p.replicas {
			if tried[i] {
				continue
			}
			if s := hrwScore(user, c.addr); best < 0 || s > bestScore || (s == bestScore && c.addr < p.replicas[best].addr) {
				best, bestScore = i, s
			}
		}
		tried[best] = true
		switch c := p.replicas[best]; {
		case c.ready:
			return balancer.PickResult{SubConn: c.sc}, nil
		case c.wait:
			return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
		}
	}
	return p.none()
}

// none is the answer when no replica can take the call: wait while one is
// connecting, else fail UNAVAILABLE.
func (p *hrwPicker) none() (balancer.PickResult, error) {
	for _, c := range p.replicas {
		if c.wait {
			return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
		}
	}
	return balancer.PickResult{}, p.err
}

// HRWIndex returns the index in replicas of the one rendezvous hashing
// gives user when all are up: the highest hrwScore, ties to the smaller
// address. The user is compared case-insensitively (UPNs are). It panics on
// an empty list.
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
