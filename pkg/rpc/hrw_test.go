package rpc

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// replicaSet is three echo ticket replicas behind a manual resolver and a
// client dialled with the given options.
type replicaSet struct {
	addrs   []string
	servers map[string]*grpc.Server
	r       *manual.Resolver
	client  ticketv1.TicketServiceClient
}

// newReplicaSet starts the replicas r0, r1, r2 and the client.
func newReplicaSet(t *testing.T, scheme string, opts []grpc.DialOption) *replicaSet {
	t.Helper()
	rs := &replicaSet{servers: map[string]*grpc.Server{}, r: manual.NewBuilderWithScheme(scheme)}
	for i := range 3 {
		a, s := serve(t, fmt.Sprintf("r%d", i))
		rs.addrs = append(rs.addrs, a)
		rs.servers[fmt.Sprintf("r%d", i)] = s
	}
	rs.r.InitialState(resolverState(rs.addrs...))
	conn, err := grpc.NewClient(rs.r.Scheme()+":///ticket", append(opts, grpc.WithResolvers(rs.r),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	rs.client = ticketv1.NewTicketServiceClient(conn)
	return rs
}

// resolverState lists addrs.
func resolverState(addrs ...string) resolver.State {
	var st resolver.State
	for _, a := range addrs {
		st.Addresses = append(st.Addresses, resolver.Address{Addr: a})
	}
	return st
}

// moves is what happened to users' placement when one of three ticket
// replicas left and came back.
type moves struct {
	users int
	// leaverUsers were on the replica that left.
	leaverUsers int
	// movedOnLeave and othersMoved: users whose replica changed when it
	// left, and those of them that were not on it.
	movedOnLeave, othersMoved int
	// movedOnReturn: users whose replica changed when it came back;
	// notHome: users not back on their first replica.
	movedOnReturn, notHome int
}

// pct is n as a percentage of the users.
func (m moves) pct(n int) float64 { return 100 * float64(n) / float64(m.users) }

// measureMoves places users over three replicas with the dial options
// given, removes the second replica from the resolver, then adds it back,
// and counts who moved each time. Each replica answers with its own name.
func measureMoves(t *testing.T, users int, opts []grpc.DialOption) moves {
	t.Helper()
	rs := newReplicaSet(t, "segmesh-moves", opts)
	addrs, r, cl := rs.addrs, rs.r, rs.client
	state := resolverState
	place := func(want int) map[string]string {
		// After a resolver update the balancer reconnects; poll until the
		// picks use exactly the replicas listed and two passes agree.
		deadline := time.Now().Add(60 * time.Second)
		var prev map[string]string
		for {
			out, seen := map[string]string{}, map[string]bool{}
			for i := range users {
				u := fmt.Sprintf("user%05d@lab.test", i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := cl.GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: u}, grpc.WaitForReady(true))
				cancel()
				if err != nil {
					t.Fatalf("%s: %v", u, err)
				}
				out[u] = resp.ClientName
				seen[resp.ClientName] = true
			}
			if len(seen) == want && maps.Equal(out, prev) {
				return out
			}
			prev = out
			if time.Now().After(deadline) {
				t.Fatalf("users placed on %d replicas (want %d), or two passes still disagree", len(seen), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	m := moves{users: users}
	first := place(3)
	r.UpdateState(state(addrs[0], addrs[2]))
	second := place(2)
	r.UpdateState(state(addrs...))
	third := place(3)
	for u, was := range first {
		if was == "r1" {
			m.leaverUsers++
		}
		if second[u] == "r1" {
			t.Fatalf("%s placed on the replica that left", u)
		}
		if second[u] != was {
			m.movedOnLeave++
			if was != "r1" {
				m.othersMoved++
			}
		}
		if third[u] != second[u] {
			m.movedOnReturn++
		}
		if third[u] != was {
			m.notHome++
		}
	}
	return m
}

// TestTicketReplicaLeaveMovesOnlyItsUsers: with the edge's dial options,
// when one of three ticket replicas leaves only its own users move (each
// costs an S4U pair on its new replica), and when it comes back only they
// move back. The aim (issue 24): the users moved are the leaver's share
// ±2 % of all users. gRPC's ring_hash, used before, also moved ~15 % of the
// others' users on a leave; its figures are logged beside for
// docs/benchmarks.md.
func TestTicketReplicaLeaveMovesOnlyItsUsers(t *testing.T) {
	const users = 1200
	tests := []struct {
		name string
		opts []grpc.DialOption
		// bounded: the aim applies (the edge's options); otherwise the
		// figures are only logged for comparison.
		bounded bool
	}{
		{name: "edge (TicketDialOptions)", opts: TicketDialOptions(), bounded: true},
		{name: "ring_hash, for comparison", opts: []grpc.DialOption{grpc.WithDefaultServiceConfig(RingHashServiceConfig),
			grpc.WithChainUnaryInterceptor(AffinityInterceptor())}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := measureMoves(t, users, tt.opts)
			t.Logf("%s: 3 -> 2: leaver held %d users (%.1f %%), %d moved (%.1f %%), %d of them from the survivors (%.1f %%); 2 -> 3: %d moved (%.1f %%), %d not back on their first replica",
				tt.name, m.leaverUsers, m.pct(m.leaverUsers), m.movedOnLeave, m.pct(m.movedOnLeave), m.othersMoved, m.pct(m.othersMoved),
				m.movedOnReturn, m.pct(m.movedOnReturn), m.notHome)
			if m.leaverUsers == 0 || m.movedOnLeave < m.leaverUsers {
				t.Fatalf("the leaver's %d users did not all move (%d moved)", m.leaverUsers, m.movedOnLeave)
			}
			if !tt.bounded {
				return
			}
			if d := m.pct(m.movedOnLeave) - m.pct(m.leaverUsers); d > 2 {
				t.Errorf("3 -> 2 moved %.1f %% of users, the leaver's share is %.1f %%: %.1f points more (aim ±2)", m.pct(m.movedOnLeave), m.pct(m.leaverUsers), d)
			}
			if d := m.pct(m.movedOnReturn) - m.pct(m.leaverUsers); d > 2 || d < -2 {
				t.Errorf("2 -> 3 moved %.1f %% of users, the returning replica's share was %.1f %% (aim ±2)", m.pct(m.movedOnReturn), m.pct(m.leaverUsers))
			}
			if m.pct(m.notHome) > 2 {
				t.Errorf("%d users (%.1f %%) are not back on their first replica after it returned", m.notHome, m.pct(m.notHome))
			}
		})
	}
}

// TestHRWIndex: the choice is stable under reordering of the replicas and
// case of the user, spreads users evenly, and removing a replica changes
// only its users' choice.
func TestHRWIndex(t *testing.T) {
	replicas := []string{"10.0.0.1:9443", "10.0.0.2:9443", "10.0.0.3:9443", "10.0.0.4:9443"}
	reversed := []string{replicas[3], replicas[2], replicas[1], replicas[0]}
	without := []string{replicas[0], replicas[1], replicas[3]}
	count := map[string]int{}
	const n = 20000
	for i := range n {
		u := fmt.Sprintf("User%05d@Corp.Example", i)
		got := replicas[HRWIndex(u, replicas)]
		count[got]++
		if r := reversed[HRWIndex(u, reversed)]; r != got {
			t.Fatalf("%s: %s in one order, %s in another", u, got, r)
		}
		if r := replicas[HRWIndex(fmt.Sprintf("user%05d@corp.example", i), replicas)]; r != got {
			t.Fatalf("%s: case changed the replica", u)
		}
		if w := without[HRWIndex(u, without)]; got != replicas[2] && w != got {
			t.Fatalf("%s moved from %s to %s when %s left", u, got, w, replicas[2])
		}
	}
	for _, r := range replicas {
		if share := float64(count[r]) / n; share < 0.23 || share > 0.27 {
			t.Errorf("%s got %.3f of users, want 0.25 ± 0.02", r, share)
		}
	}
}

// TestHRWDeadReplicaStillResolved: a replica whose server died but whose
// address is still resolved (DNS not updated yet) hands its users to their
// next best replica once its connection fails; the other users stay put.
func TestHRWDeadReplicaStillResolved(t *testing.T) {
	rs := newReplicaSet(t, "segmesh-dead", TicketDialOptions())
	addrs, servers, cl := rs.addrs, rs.servers, rs.client
	where := func(u string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cl.GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: u}, grpc.WaitForReady(true))
		if err != nil {
			return "", err
		}
		return resp.ClientName, nil
	}
	before := map[string]string{}
	for i := range 200 {
		u := fmt.Sprintf("user%03d@lab.test", i)
		got, err := where(u)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("r%d", HRWIndex(u, addrs)); got != want {
			t.Fatalf("%s on %s, want %s (its best replica) once all are up", u, got, want)
		}
		before[u] = got
	}
	servers["r1"].Stop()
	deadline := time.Now().Add(20 * time.Second)
	for u, was := range before {
		for {
			got, err := where(u)
			if err == nil && got != "r1" {
				if was != "r1" && got != was {
					t.Fatalf("%s moved from %s to %s although its replica runs", u, was, got)
				}
				if was == "r1" {
					if want := fmt.Sprintf("r%d", map[int]int{0: 0, 1: 2}[HRWIndex(u, []string{addrs[0], addrs[2]})]); got != want {
						t.Fatalf("%s went to %s, want its second best %s", u, got, want)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still not served by a live replica: %v %v", u, got, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
