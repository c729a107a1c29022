package edge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/pkg/refresh"
	ticketv1 "github.com/segmesh/segmesh/proto/segmesh/ticket/v1"
)

// Ticket is a service ticket for one user and SPN with what is needed to
// build an AP-REQ. SessionKey never appears in logs or errors.
type Ticket struct {
	// DER is the ticket, ASN.1 DER (application tag 1).
	DER []byte
	// SessionKey is the ticket's session key.
	SessionKey []byte
	// Etype is SessionKey's encryption type (18 = AES256-CTS-HMAC-SHA1-96).
	Etype int32
	// CName is the client name as the KDC returned it, components joined by "/".
	CName string
	// CNameType is CName's name type (1 principal, 10 enterprise).
	CNameType int32
	// CRealm is the client realm as the KDC returned it.
	CRealm string
	// StartTime is when the ticket becomes valid; zero when unknown.
	StartTime time.Time
	// EndTime is when the ticket expires.
	EndTime time.Time
}

// TicketError is a failure to get a service ticket.
type TicketError struct {
	// Unavailable reports a transient failure: KDC or ticket role unreachable.
	Unavailable bool
	// Code is the Kerberos error code; 0 when the KDC was not reached.
	Code int32
	// Name is the code's name, for example KDC_ERR_BADOPTION.
	Name string
	// Hint says what an administrator can do.
	Hint string
	// Err is the cause.
	Err error
}

// Error describes the failure without any credential.
func (e *TicketError) Error() string {
	s := "get service ticket"
	if e.Code != 0 {
		s += fmt.Sprintf(" (KDC error %d %s)", e.Code, e.Name)
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *TicketError) Unwrap() error { return e.Err }

// ticketSource is what the edge needs of the ticket role.
type ticketSource interface {
	// GetServiceTicket returns a ticket for upn to spn.
	GetServiceTicket(ctx context.Context, upn, spn string) (*Ticket, error)
	// Invalidate drops the ticket role's cached ticket for (upn, spn).
	Invalidate(ctx context.Context, upn, spn string) error
}

// grpcTickets calls the ticket role through its generated client.
type grpcTickets struct {
	c ticketv1.TicketServiceClient
}

func newGRPCTickets(cc grpc.ClientConnInterface) *grpcTickets {
	return &grpcTickets{c: ticketv1.NewTicketServiceClient(cc)}
}

// GetServiceTicket asks the ticket role.
func (g *grpcTickets) GetServiceTicket(ctx context.Context, upn, spn string) (*Ticket, error) {
	r, err := g.c.GetServiceTicket(ctx, &ticketv1.GetServiceTicketRequest{UserPrincipal: upn, TargetSpn: spn})
	if err != nil {
		return nil, ticketErrorOf(err)
	}
	if len(r.GetTicketDer()) == 0 || len(r.GetSessionKey()) == 0 || r.GetEndTime() == nil {
		return nil, &TicketError{Err: errors.New("ticket role returned an incomplete ticket")}
	}
	t := &Ticket{
		DER:        r.GetTicketDer(),
		SessionKey: r.GetSessionKey(),
		Etype:      r.GetSessionKeyEtype(),
		CName:      r.GetClientName(),
		CNameType:  r.GetClientNameType(),
		CRealm:     r.GetClientRealm(),
		EndTime:    r.GetEndTime().AsTime(),
	}
	if r.GetStartTime() != nil {
		t.StartTime = r.GetStartTime().AsTime()
	}
	return t, nil
}

// Invalidate asks the ticket role to drop its cached ticket.
func (g *grpcTickets) Invalidate(ctx context.Context, upn, spn string) error {
	_, err := g.c.Invalidate(ctx, &ticketv1.InvalidateRequest{UserPrincipal: upn, TargetSpn: spn})
	if err != nil {
		return fmt.Errorf("invalidate ticket: %w", err)
	}
	return nil
}

// ticketErrorOf turns a GetServiceTicket status into a TicketError: a
// transient failure (KDC or role unreachable) or a definitive KDC answer
// with the ticket role's hint.
func ticketErrorOf(err error) *TicketError {
	st := status.Convert(err)
	te := &TicketError{Err: err}
	for _, d := range st.Details() {
		if kd, ok := d.(*ticketv1.KDCErrorDetail); ok {
			te.Code, te.Name, te.Hint = kd.GetCode(), kd.GetName(), kd.GetHint()
		}
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Canceled:
		te.Unavailable = true
	case codes.Unknown, codes.Internal:
		// A role failure without a KDC answer is transient; with one it is
		// the KDC's word.
		te.Unavailable = te.Code == 0
	}
	if te.Hint == "" && !te.Unavailable {
		te.Hint = st.Message()
	}
	return te
}

// ticketKey names a cache entry.
type ticketKey struct{ upn, spn string }

// String is the key's shared-call key: the UPN's length first, so two
// different keys never share a string (and a call, and a ticket).
func (k ticketKey) String() string {
	return strconv.Itoa(len(k.upn)) + ":" + k.upn + k.spn
}

// Early refresh: an entry with less than softMargin plus a random part of
// softJitter left is refreshed in the background by the first request that
// finds it so, while that request and the next use the entry as it is.
// softMargin less the 5-minute hard margin exceeds the longest gap between
// an always-on device's requests (EAS Ping's HeartbeatInterval is at most
// 3540 s), so such a device always passes through the window and never
// waits on an expired ticket; the ticket role's refresh margin
// (services/ticket, 75 to 85 minutes) exceeds softMargin+softJitter, so the
// role renews the ticket
// when asked then (one TGS exchange where the KDC renews service tickets)
// and the entry follows the renewed end time. A user idle through the
// window costs no exchange: the ticket lapses and the next request gets a
// new one.
// The numbers are pkg/refresh's, which checks these relations.
const (
	softMargin = refresh.EdgeSoftMargin
	softJitter = refresh.EdgeSoftJitter
	// softRetry spaces background refreshes of an entry: after one that
	// failed or brought no later end time.
	softRetry = refresh.EdgeSoftRetry
)

// ticketEntry is a cached ticket with its prepared negotiator.
type ticketEntry struct {
	t   *Ticket
	neg negotiator
	// refreshAt is when a request stops using the entry and waits for a
	// new ticket (margin before the end).
	refreshAt time.Time
	// softAt (unix nanoseconds) is when a request starts a background
	// refresh and goes on with the entry.
	softAt atomic.Int64
}

// ticketCache is the edge-side cache of tickets per (user, SPN): a hot
// request makes no RPC. Entries are refreshed in the background from
// softMargin before they end and waited for from margin before; when the
// ticket role is unavailable, the old ticket is used until it really ends.
// Concurrent misses and refreshes for one key make one RPC.
type ticketCache struct {
	src     ticketSource
	factory negotiatorFactory
	margin  time.Duration
	max     int
	now     func() time.Time

	mu    sync.RWMutex
	m     map[ticketKey]*ticketEntry
	calls sharedCalls[*ticketEntry]
}

func newTicketCache(src ticketSource, factory negotiatorFactory, margin, rpc time.Duration, max int, now func() time.Time) *ticketCache {
	c := &ticketCache{src: src, factory: factory, margin: margin, max: max, now: now, m: map[ticketKey]*ticketEntry{}}
	c.calls.timeout = rpc
	c.calls.g.Call = "edge: the ticket role call"
	return c
}

// get returns the entry for (upn, spn) and whether it came from the cache.
func (c *ticketCache) get(ctx context.Context, upn, spn string) (*ticketEntry, bool, error) {
	k := ticketKey{upn, spn}
	now := c.now()
	c.mu.RLock()
	old := c.m[k]
	c.mu.RUnlock()
	if old != nil && now.Before(old.refreshAt) {
		if soft := old.softAt.Load(); now.UnixNano() >= soft && old.softAt.CompareAndSwap(soft, now.Add(softRetry).UnixNano()) {
			c.refreshBehind(ctx, k, old)
		}
		return old, true, nil
	}
	e, err := c.calls.do(ctx, k.String(), c.fetchFunc(k, old))
	if err == nil {
		return e, false, nil
	}
	var te *TicketError
	if !errors.As(err, &te) {
		if ctx.Err() != nil {
			return nil, false, err
		}
		te = &TicketError{Unavailable: true, Err: err}
	}
	if te.Unavailable && old != nil && now.Add(time.Minute).Before(old.t.EndTime) {
		return old, true, nil // ride out a KDC outage on a still valid ticket
	}
	return nil, false, te
}

// fetchFunc returns the flight that replaces old (nil on a miss).
func (c *ticketCache) fetchFunc(k ticketKey, old *ticketEntry) func(context.Context) (*ticketEntry, error) {
	return func(ctx context.Context) (*ticketEntry, error) {
		// A flight that ended between the caller's check and this one may
		// have stored a fresh entry already: use it rather than ask again.
		c.mu.RLock()
		cur := c.m[k]
		c.mu.RUnlock()
		if cur != nil && cur != old && c.now().Before(cur.refreshAt) {
			return cur, nil
		}
		return c.fetch(ctx, k)
	}
}

// refreshBehind starts the flight that replaces old without waiting for
// it: the flight runs on detached from ctx (values kept), bounded by the
// RPC timeout; a failure leaves old in use.
func (c *ticketCache) refreshBehind(ctx context.Context, k ticketKey, old *ticketEntry) {
	c.calls.backgroundDo(ctx, k.String(), c.fetchFunc(k, old))
}

func (c *ticketCache) fetch(ctx context.Context, k ticketKey) (*ticketEntry, error) {
	t, err := c.src.GetServiceTicket(ctx, k.upn, k.spn)
	if err != nil {
		return nil, err
	}
	neg, err := c.factory(t)
	if err != nil {
		return nil, &TicketError{Err: err, Hint: "the ticket role returned a ticket the edge cannot use"}
	}
	now := c.now()
	margin := c.margin
	if life := t.EndTime.Sub(now); life < 2*margin {
		margin = life / 2
	}
	e := &ticketEntry{t: t, neg: neg, refreshAt: t.EndTime.Add(-margin)}
	e.softAt.Store(softTime(t, now).UnixNano())
	c.mu.Lock()
	if len(c.m) >= c.max {
		for key, old := range c.m {
			if !now.Before(old.t.EndTime) || len(c.m) >= c.max {
				delete(c.m, key)
			}
		}
	}
	c.m[k] = e
	c.mu.Unlock()
	return e, nil
}

// softTime is when a request starts refreshing t in the background:
// softMargin plus jitter before its end (at most a quarter of its
// lifetime), but not before softRetry from now (the role handed back a
// ticket that is already in the window: ask again a little later).
func softTime(t *Ticket, now time.Time) time.Time {
	m := softMargin + rand.N(softJitter)
	start := t.StartTime
	if start.IsZero() || start.After(now) {
		start = now
	}
	if q := t.EndTime.Sub(start) / 4; m > q {
		m = q
	}
	at := t.EndTime.Add(-m)
	if retry := now.Add(softRetry); at.Before(retry) {
		at = retry
	}
	return at
}

// invalidate drops e (if it is still the cached entry) and asks the ticket
// role to drop its copy, so the next get fetches a new ticket.
func (c *ticketCache) invalidate(ctx context.Context, upn, spn string, e *ticketEntry) error {
	k := ticketKey{upn, spn}
	c.mu.Lock()
	if c.m[k] == e {
		delete(c.m, k)
	}
	c.mu.Unlock()
	return c.src.Invalidate(ctx, upn, spn)
}

// len returns the number of cached tickets.
func (c *ticketCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
