package edge

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/config"
)

// panickingTickets is a ticket role whose client panics (a parser meeting
// an answer it did not expect) for mallory, or for everyone while panicking
// is set.
type panickingTickets struct {
	renewingTickets
	panicking atomic.Bool
}

func (p *panickingTickets) GetServiceTicket(ctx context.Context, upn, spn string) (*Ticket, error) {
	if upn == "mallory@lab.test" || p.panicking.Load() {
		p.calls.Add(1)
		panic("unexpected ticket answer for " + upn)
	}
	return p.renewingTickets.GetServiceTicket(ctx, upn, spn)
}

// panickingIdentity is an identity role whose client panics for the
// certificate whose leaf is "mallory".
type panickingIdentity struct{ calls atomic.Int32 }

func (p *panickingIdentity) MapCertificate(_ context.Context, leaf []byte, _ [][]byte) (Identity, error) {
	p.calls.Add(1)
	if string(leaf) == "mallory" {
		panic("unexpected identity answer for mallory")
	}
	return Identity{UPN: string(leaf) + "@lab.test"}, nil
}

// TestAttackPanicInTheFetchReachesTheCaller: the edge's identity and ticket
// fetches run in a shared call (singleflight's DoChan goroutine), not in
// the device request's goroutine, and DoChan re-raises a panic in a
// goroutine of its own that nothing can recover: one unexpected answer
// ended the whole edge process, whatever the handler's recovery (dde01d3)
// would have done. Attacker review rvedge: this crashed the test binary on
// main. Now the panic is raised again in each waiting caller's goroutine
// (the device request's, where panicRecovery logs and counts it and the
// device's connection is closed), nothing is cached, and the next call, the
// same user's or another's, is served. A background refresh that panics
// with no caller waiting leaves the old ticket in use.
func TestAttackPanicInTheFetchReachesTheCaller(t *testing.T) {
	t.Run("tickets", func(t *testing.T) {
		clk := &testClock{t: time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)}
		src := &panickingTickets{renewingTickets: renewingTickets{now: clk.Now, life: 10 * time.Hour, roleMargin: 75 * time.Minute}}
		c := newTicketCache(src, fakeFactory, 5*time.Minute, time.Minute, 100, clk.Now)
		for _, tc := range []struct {
			name, upn string
			panics    bool
			calls     int64 // role calls made
		}{
			{"mallory's fetch panics", "mallory@lab.test", true, 1},
			{"alice is served after it", "alice@lab.test", false, 1},
			{"mallory's next call asks the role again", "mallory@lab.test", true, 1},
			{"alice's ticket is a hit", "alice@lab.test", false, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := src.calls.Load()
				e, v := recovered(func() (*ticketEntry, error) {
					e, _, err := c.get(context.Background(), tc.upn, "HTTP/mail")
					return e, err
				})
				if n := src.calls.Load() - before; n != tc.calls {
					t.Errorf("get(%s) made %d role calls, want %d", tc.upn, n, tc.calls)
				}
				if tc.panics {
					if !strings.Contains(fmt.Sprint(v), "unexpected ticket answer for "+tc.upn) {
						t.Fatalf("get(%s) = %v, panic %v; want the fetch's panic raised in the caller", tc.upn, e, v)
					}
					return
				}
				if v != nil || e == nil || e.t.CName != tc.upn {
					t.Fatalf("get(%s) = %v, panic %v; want %s's ticket", tc.upn, e, v, tc.upn)
				}
			})
		}

		// A background refresh that panics with nobody waiting: alice's
		// ticket stays in use, and the edge is still there to serve it.
		clk.Add(10*time.Hour - softMargin + time.Minute) // within the soft margin, before the hard one
		src.panicking.Store(true)
		before := src.calls.Load()
		if e, v := recovered(func() (*ticketEntry, error) {
			e, _, err := c.get(context.Background(), "alice@lab.test", "HTTP/mail")
			return e, err
		}); v != nil || e == nil || e.t.CName != "alice@lab.test" {
			t.Fatalf("get(alice) in the soft margin = %v, panic %v; want her ticket", e, v)
		}
		waitFor(t, "the background refresh", func() bool { return src.calls.Load() > before && c.calls.background.Load() == 0 })
		src.panicking.Store(false)
		if e, hit, err := c.get(context.Background(), "alice@lab.test", "HTTP/mail"); err != nil || !hit || e.t.CName != "alice@lab.test" {
			t.Fatalf("after a panicking refresh get(alice) = %v, hit %v, %v; want her ticket from the cache", e, hit, err)
		}
	})

	t.Run("identities", func(t *testing.T) {
		src := &panickingIdentity{}
		c := newIdentityCache(src, 15*time.Minute, time.Minute, 100, time.Now)
		for _, tc := range []struct {
			name, leaf string
			panics     bool
			calls      int32
		}{
			{"mallory's lookup panics", "mallory", true, 1},
			{"alice is served after it", "alice", false, 1},
			{"mallory's next lookup asks the role again", "mallory", true, 1},
			{"alice's identity is a hit", "alice", false, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := src.calls.Load()
				id, v := recovered(func() (Identity, error) {
					id, _, err := c.lookup(context.Background(), [32]byte{tc.leaf[0]}, []byte(tc.leaf), nil)
					return id, err
				})
				if n := src.calls.Load() - before; n != tc.calls {
					t.Errorf("lookup(%s) made %d role calls, want %d", tc.leaf, n, tc.calls)
				}
				if tc.panics {
					if !strings.Contains(fmt.Sprint(v), "unexpected identity answer for mallory") {
						t.Fatalf("lookup(%s) = %v, panic %v; want the lookup's panic raised in the caller", tc.leaf, id, v)
					}
					return
				}
				if v != nil || id.UPN != tc.leaf+"@lab.test" {
					t.Fatalf("lookup(%s) = %v, panic %v; want %s@lab.test", tc.leaf, id, v, tc.leaf)
				}
			})
		}
	})
}

// recovered runs f and returns its value, or the value it panicked with
// (what the device handler's panicRecovery gets); an error is returned as
// that value.
func recovered[V any](f func() (V, error)) (val V, v any) {
	defer func() {
		if r := recover(); r != nil {
			v = r
		}
	}()
	val, err := f()
	if err != nil {
		return val, err
	}
	return val, nil
}

// TestSharedCallPanicLoggedAndCounted: a shared role call that panics with
// no device request waiting for it (a background ticket refresh, or
// callers that all left) was dropped unlogged. Now every panic of a shared
// call is logged at error level with its stack and counted in
// segmesh_background_panics by task, whether a caller waits (who also gets
// it raised) or not.
func TestSharedCallPanicLoggedAndCounted(t *testing.T) {
	c := config.Default()
	c.KCD = config.KCD{Enabled: true, TargetSPN: "HTTP/mail.lab.test"}
	c.Segmesh.Edge.ExchangeURLs = []string{"https://exchange.lab.test"}
	s, logs, reader := meteredEdge(t, &c, options{identity: &panickingIdentity{}, tickets: &panickingTickets{}})
	if err := s.connectKCD(); err != nil {
		t.Fatal(err)
	}
	// A background refresh nobody waits for.
	s.tickets.calls.backgroundDo(context.Background(), "mallory", func(context.Context) (*ticketEntry, error) {
		panic("unexpected ticket answer in a background refresh")
	})
	waitFor(t, "the background refresh", func() bool { return s.tickets.calls.background.Load() == 0 })
	// A lookup a device request waits for: raised there too.
	if _, v := recovered(func() (Identity, error) {
		id, _, err := s.identity.lookup(context.Background(), [32]byte{'m'}, []byte("mallory"), nil)
		return id, err
	}); !strings.Contains(fmt.Sprint(v), "unexpected identity answer for mallory") {
		t.Fatalf("the waiting lookup got %v, want the panic", v)
	}
	got := collectInts(t, reader)
	if got["segmesh_background_panics/edge_ticket_call"] != 1 || got["segmesh_background_panics/edge_identity_call"] != 1 {
		t.Fatalf("segmesh_background_panics: %v, want one per task", got)
	}
	log := logs.String()
	for _, want := range []string{"level=ERROR", "task=edge_ticket_call", "unexpected ticket answer in a background refresh",
		"task=edge_identity_call", "unexpected identity answer for mallory", "goroutine "} {
		if !strings.Contains(log, want) {
			t.Fatalf("log lacks %q:\n%s", want, log)
		}
	}
}
