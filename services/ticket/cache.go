package ticket

import (
	"container/list"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmesh/segmesh/pkg/flight"
	"github.com/segmesh/segmesh/pkg/s4u"
	"github.com/segmesh/segmesh/pkg/upn"
)

// fetchFunc obtains a ticket from the KDC. old is the ticket being
// refreshed (it may be renewed instead of asking anew), nil on a miss.
type fetchFunc func(ctx context.Context, user, spn string, old *s4u.Ticket) (*s4u.Ticket, error)

// cacheKey identifies a cache entry. UPNs are case-insensitive in Active
// Directory, so the user part is folded, ASCII letters only (upn.FoldASCII:
// Unicode lower-casing would give "al\u0130ce" alice's entry); the SPN is
// the configured spelling (the service canonicalises it before asking).
type cacheKey struct{ user, spn string }

func keyOf(user, spn string) cacheKey {
	return cacheKey{upn.FoldASCII(user), spn}
}

// entry is a cached ticket or a remembered definitive refusal. The hit path
// reads it under the cache's read lock; what a hit changes is atomic.
type entry struct {
	key     cacheKey
	err     error     // set for a negative entry; immutable
	expires time.Time // negative entry end; immutable

	ticket       atomic.Pointer[s4u.Ticket]
	refreshAfter atomic.Int64 // unix nanoseconds: when a hit refreshes the ticket first
	used         atomic.Bool  // second-chance bit: set by hits, cleared by eviction scans
}

// cacheEvent names what a Get did, for metrics.
type cacheEvent string

const (
	eventHit         cacheEvent = "hit"
	eventMiss        cacheEvent = "miss"
	eventNegativeHit cacheEvent = "negative_hit"
	eventRefresh     cacheEvent = "refresh"
	eventEvict       cacheEvent = "evict"
)

// defaultCacheSize bounds the cache when segmesh.ticket.cacheSize is 0.
const defaultCacheSize = 100000

// ticketCache caches tickets per (user, SPN) with LRU eviction (the
// second-chance approximation, so a hit takes only a read lock), refresh
// (renewal where the KDC allows it) when a hit finds less than a margin
// left, and one fetch for concurrent misses and refreshes of a key.
//
// The refresh is driven by use: a ticket nobody asks for is left to expire
// (a user who went home costs nothing overnight). The edge, which caches
// per user too, asks again when its copy has less than its own, smaller
// margin left (services/edge/kcd_tickets.go), so an active user's request finds
// the ticket due here and gets the renewed one.
type ticketCache struct {
	fetch         fetchFunc
	now           func() time.Time
	max           int
	negTTL        time.Duration
	refreshMargin time.Duration
	refreshJitter time.Duration
	minRemaining  time.Duration
	fetchTimeout  time.Duration
	onEvent       func(cacheEvent)

	// sf shares the fetch of a key among concurrent misses and refreshes;
	// its panic reaches each waiting caller (pkg/flight) and sf.OnPanic.
	sf flight.Group[*s4u.Ticket]

	// epoch counts the drops of every entry (a new service account): a
	// fetch begun before one does not store what it got.
	epoch atomic.Uint64

	mu    sync.RWMutex
	ll    *list.List // of *entry, most recently stored or second-chanced at the front
	items map[cacheKey]*list.Element
}

func newTicketCache(fetch fetchFunc, cfg Config, now func() time.Time, onEvent func(cacheEvent)) *ticketCache {
	if onEvent == nil {
		onEvent = func(cacheEvent) {}
	}
	max := cfg.CacheSize
	if max <= 0 {
		max = defaultCacheSize
	}
	return &ticketCache{
		fetch: fetch, now: now, max: max, negTTL: cfg.NegativeTTL,
		refreshMargin: cfg.RefreshMargin, refreshJitter: cfg.RefreshJitter,
		minRemaining: cfg.MinRemaining, fetchTimeout: 30 * time.Second, onEvent: onEvent,
		sf: flight.Group[*s4u.Ticket]{Call: "ticket: the KDC exchange"},
		ll: list.New(), items: map[cacheKey]*list.Element{},
	}
}

// Get returns the ticket for (user, spn), from the cache when it has one with
// enough life left, else from the KDC. cached reports a cache hit.
func (c *ticketCache) Get(ctx context.Context, user, spn string) (t *s4u.Ticket, cached bool, err error) {
	k := keyOf(user, spn)
	now := c.now()
	c.mu.RLock()
	el, ok := c.items[k]
	c.mu.RUnlock()
	if ok {
		e := el.Value.(*entry)
		if e.err != nil && now.Before(e.expires) {
			e.used.Store(true)
			c.onEvent(eventNegativeHit)
			return nil, true, e.err
		}
		if t := e.ticket.Load(); t != nil && now.Before(t.EndTime.Add(-c.minRemaining)) {
			if !e.used.Load() {
				e.used.Store(true)
			}
			if now.UnixNano() >= e.refreshAfter.Load() {
				if nt := c.refresh(ctx, e, user, spn, t); nt != nil {
					return nt, false, nil
				}
			}
			c.onEvent(eventHit)
			return t, true, nil
		}
		c.mu.Lock()
		if cur, ok := c.items[k]; ok && cur == el {
			c.removeLocked(el)
		}
		c.mu.Unlock()
	}
	c.onEvent(eventMiss)

	ch := c.sf.DoChan(k.user+"\x00"+k.spn, func() (*s4u.Ticket, error) {
		// A flight that ended between the check above and this one may have
		// stored a ticket already: use it rather than ask the KDC again.
		if t := c.fresh(k); t != nil {
			return t, nil
		}
		// The fetch outlives any one caller: others may be waiting on it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.fetchTimeout)
		defer cancel()
		epoch := c.epoch.Load()
		// A panic of the fetch (a parser meeting a KDC reply it did not
		// expect) stores nothing: it leaves through the flight.
		t, err := c.fetch(fctx, user, spn, nil)
		c.store(k, t, err, epoch)
		return t, err
	})
	t, err = c.sf.Wait(ctx, ch) // a panic of the fetch is raised here, in the gRPC handler's goroutine
	if err != nil {
		return nil, false, err
	}
	return t, false, nil
}

// fresh returns the cached ticket for k when it has enough life left, else nil.
func (c *ticketCache) fresh(k cacheKey) *s4u.Ticket {
	c.mu.RLock()
	el, ok := c.items[k]
	c.mu.RUnlock()
	if !ok {
		return nil
	}
	if t := el.Value.(*entry).ticket.Load(); t != nil && c.now().Before(t.EndTime.Add(-c.minRemaining)) {
		return t
	}
	return nil
}

// refresh replaces e's ticket t, which is due, and returns the new one; nil
// when the refresh failed (t stays in use while valid, the next attempt is
// 30 s later) or the caller stopped waiting. Concurrent refreshes and
// misses of the key share one fetch.
func (c *ticketCache) refresh(ctx context.Context, e *entry, user, spn string, t *s4u.Ticket) *s4u.Ticket {
	c.onEvent(eventRefresh)
	ch := c.sf.DoChan(e.key.user+"\x00"+e.key.spn, func() (*s4u.Ticket, error) {
		// A flight that ended meanwhile may have refreshed it already.
		if cur := e.ticket.Load(); cur != t {
			return cur, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.fetchTimeout)
		defer cancel()
		done := false
		defer func() {
			if !done { // failed, or panicked: the panic leaves through the flight
				e.refreshAfter.Store(c.now().Add(30 * time.Second).UnixNano())
			}
		}()
		nt, err := c.fetch(fctx, user, spn, t)
		if err != nil {
			return nil, err
		}
		done = true
		e.ticket.Store(nt)
		e.refreshAfter.Store(c.refreshTime(nt).UnixNano())
		return nt, nil
	})
	nt, err := c.sf.Wait(ctx, ch) // a panic of the fetch is raised here, in the gRPC handler's goroutine
	if err != nil || nt == nil {
		return nil
	}
	return nt
}

// store records the outcome of a fetch begun at epoch: a ticket, a
// definitive refusal for negTTL, or nothing for a temporary failure or
// when every entry was dropped since.
func (c *ticketCache) store(k cacheKey, t *s4u.Ticket, err error, epoch uint64) {
	e := &entry{key: k}
	switch {
	case err == nil:
		e.ticket.Store(t)
		e.refreshAfter.Store(c.refreshTime(t).UnixNano())
	case definitive(err) && c.negTTL > 0:
		e.err = err
		e.expires = c.now().Add(c.negTTL)
	default:
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch.Load() != epoch {
		return
	}
	if el, ok := c.items[k]; ok {
		c.removeLocked(el)
	}
	c.items[k] = c.ll.PushFront(e)
	// Second-chance eviction: an entry hit since the last scan moves to the
	// front instead of going. Bounded: every entry is looked at most twice.
	for scans := 0; c.ll.Len() > c.max && scans < 2*c.ll.Len(); scans++ {
		back := c.ll.Back()
		if be := back.Value.(*entry); be.used.Load() && be != e {
			be.used.Store(false)
			c.ll.MoveToFront(back)
			continue
		}
		c.removeLocked(back)
		c.onEvent(eventEvict)
	}
}

func (c *ticketCache) removeLocked(el *list.Element) {
	c.ll.Remove(el)
	delete(c.items, el.Value.(*entry).key)
}

// Invalidate drops the entries of user for spn, or for every SPN when spn is
// empty, and returns how many it dropped.
func (c *ticketCache) Invalidate(user, spn string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if spn != "" {
		if el, ok := c.items[keyOf(user, spn)]; ok {
			c.removeLocked(el)
			return 1
		}
		return 0
	}
	u := upn.FoldASCII(user)
	n := 0
	for k, el := range c.items {
		if k.user == u {
			c.removeLocked(el)
			n++
		}
	}
	return n
}

// drop removes every entry when all is set (a new service account: the
// fetches under way then store nothing either), else the entries of an SPN
// not among spns; it returns how many it removed.
func (c *ticketCache) drop(all bool, spns []string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if all {
		c.epoch.Add(1)
	}
	n := 0
	for k, el := range c.items {
		if all || !slices.Contains(spns, k.spn) {
			c.removeLocked(el)
			n++
		}
	}
	return n
}

// resize sets the bound on entries (0: the default); a smaller bound
// evicts at the next store.
func (c *ticketCache) resize(max int) {
	if max <= 0 {
		max = defaultCacheSize
	}
	c.mu.Lock()
	c.max = max
	c.mu.Unlock()
}

// Len returns the number of entries, negative ones included.
func (c *ticketCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ll.Len()
}

// refreshTime is when a hit should refresh t: when less than the refresh
// margin plus a random jitter is left (the jitter spreads the refreshes of
// tickets issued together), but never before half its lifetime.
func (c *ticketCache) refreshTime(t *s4u.Ticket) time.Time {
	margin := c.refreshMargin
	if c.refreshJitter > 0 {
		margin += rand.N(c.refreshJitter)
	}
	if half := t.EndTime.Sub(t.StartTime) / 2; margin > half {
		margin = half
	}
	return t.EndTime.Add(-margin)
}

// definitive reports whether err is a KDC answer that will not change by
// retrying soon (unknown user, not delegable, wrong client...).
func definitive(err error) bool {
	var ke *s4u.KDCError
	var wc *s4u.WrongClientError
	var se *s4u.SessionKeyError
	if errors.As(err, &wc) || errors.As(err, &se) {
		return true
	}
	return errors.As(err, &ke) && !s4u.IsTemporary(err)
}
