package edge

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

// testClock is a settable clock safe for the cache's background flights.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// renewingTickets is a ticket role that, like services/ticket, hands back
// the ticket it holds until that has less than roleMargin left, then a
// renewed one (same start, later end).
type renewingTickets struct {
	now        func() time.Time
	life       time.Duration
	roleMargin time.Duration

	mu     sync.Mutex
	cur    *Ticket
	err    error
	calls  atomic.Int64
	issued atomic.Int64 // tickets issued or renewed: what the KDC saw
}

func (r *renewingTickets) GetServiceTicket(_ context.Context, upn, _ string) (*Ticket, error) {
	r.calls.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	now := r.now()
	if r.cur == nil || !now.Before(r.cur.EndTime.Add(-r.roleMargin)) {
		r.issued.Add(1)
		r.cur = &Ticket{DER: []byte("t"), SessionKey: []byte("k"), CName: upn, StartTime: now, EndTime: now.Add(r.life)}
	}
	return r.cur, nil
}

func (r *renewingTickets) Invalidate(context.Context, string, string) error { return nil }

func (r *renewingTickets) setErr(err error) { r.mu.Lock(); r.err = err; r.mu.Unlock() }

// TestTicketCacheRefreshesBehindAndFollowsRenewal: from the soft margin a
// request uses the entry and refreshes it in the background; the entry
// then follows the renewed end time, and the role is asked once per
// ticket lifetime, not more.
func TestTicketCacheRefreshesBehindAndFollowsRenewal(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
	src := &renewingTickets{now: clk.Now, life: 10 * time.Hour, roleMargin: 75 * time.Minute}
	c := newTicketCache(src, fakeFactory, 5*time.Minute, time.Minute, 100, clk.Now)
	get := func() (*ticketEntry, bool) {
		t.Helper()
		e, hit, err := c.get(context.Background(), "bob@lab.test", "HTTP/mail")
		if err != nil {
			t.Fatal(err)
		}
		return e, hit
	}
	first, _ := get()
	end := first.t.EndTime
	// Every 50 minutes (an EAS Ping device with a long heartbeat) for 3 days.
	var stale int
	for range 3 * 24 * 60 / 50 {
		clk.Add(50 * time.Minute)
		e, hit := get()
		if !hit {
			stale++ // a request that waited for the role
		}
		if !clk.Now().Before(e.t.EndTime) {
			t.Fatalf("%v: served a ticket that ended at %v", clk.Now(), e.t.EndTime)
		}
		waitFor(t, "the background refresh", func() bool { return c.calls.background.Load() == 0 })
		if e2, _ := get(); e2.t.EndTime.After(end) {
			end = e2.t.EndTime
		}
	}
	if stale != 0 {
		t.Fatalf("%d requests waited for a ticket", stale)
	}
	// 72 h of 10-hour tickets refreshed between 70 and 5 minutes before
	// their end: 8 tickets, and as many role calls (a background call that
	// brought nothing new is not retried before softRetry).
	if n := src.issued.Load(); n < 8 || n > 9 {
		t.Fatalf("%d tickets issued in 72 h, want 8 or 9", n)
	}
	if n := src.calls.Load(); n > 2*src.issued.Load() {
		t.Fatalf("%d role calls for %d tickets", n, src.issued.Load())
	}
}

func TestTicketCacheRidesOutOutages(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	src := &renewingTickets{now: clk.Now, life: time.Hour, roleMargin: 30 * time.Minute}
	c := newTicketCache(src, fakeFactory, 5*time.Minute, time.Minute, 100, clk.Now)
	get := func() (bool, error) {
		_, hit, err := c.get(context.Background(), "bob@lab.test", "HTTP/mail")
		return hit, err
	}
	if hit, err := get(); err != nil || hit {
		t.Fatalf("first get: hit=%v err=%v", hit, err)
	}
	clk.Add(40 * time.Minute) // before the soft margin (a quarter of 1 h)
	if hit, _ := get(); !hit || src.calls.Load() != 1 {
		t.Fatalf("refreshed too early: hit=%v calls=%d", hit, src.calls.Load())
	}
	src.setErr(ticketErrorOf(statusErr(codes.Unavailable, "KDC unreachable")))
	clk.Add(10 * time.Minute) // in the soft margin: a hit, and a background try that fails
	if hit, err := get(); err != nil || !hit {
		t.Fatalf("soft margin: hit=%v err=%v", hit, err)
	}
	waitFor(t, "the background refresh", func() bool { return src.calls.Load() == 2 && c.calls.background.Load() == 0 })
	clk.Add(6 * time.Minute) // inside the 5-minute margin, KDC down: the old ticket
	if hit, err := get(); err != nil || !hit {
		t.Fatalf("KDC down with a still valid ticket: hit=%v err=%v, want the old ticket", hit, err)
	}
	if src.calls.Load() != 3 {
		t.Fatalf("calls = %d, want a renewal attempt", src.calls.Load())
	}
	clk.Add(4 * time.Minute) // past the end
	_, err := get()
	var te *TicketError
	if !errors.As(err, &te) || !te.Unavailable {
		t.Fatalf("expired and KDC down: err = %v, want an unavailable TicketError", err)
	}
	if f := failureOf(err, 30); f.Status != 503 || f.RetryAfter != 30 {
		t.Fatalf("maps to %d Retry-After %d, want 503 30", f.Status, f.RetryAfter)
	}
}
