package certmap

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// fingerprint is the SHA-256 of a certificate's DER, the cache key.
type fingerprint = [sha256.Size]byte

// answer is what the directory said about one certificate: a mapping, or a
// NotFoundError, AmbiguousError or NoUPNError. Transport and bind failures
// are never answers and are never cached.
type answer struct {
	mapping Mapping
	err     error
}

type cacheEntry struct {
	key     fingerprint
	answer  answer
	expires time.Time
}

// cache is a bounded LRU of directory answers with a TTL for mappings and a
// shorter one for misses, so a certificate published after a miss is found
// soon. It is safe for concurrent use.
type cache struct {
	mu       sync.Mutex
	max      int
	ttl      time.Duration
	negTTL   time.Duration
	now      func() time.Time
	order    *list.List // front = most recently used; values are *cacheEntry
	byKey    map[fingerprint]*list.Element
	evicted  uint64
	disabled bool
}

func newCache(max int, ttl, negTTL time.Duration, now func() time.Time) *cache {
	return &cache{
		max: max, ttl: ttl, negTTL: negTTL, now: now,
		order:    list.New(),
		byKey:    make(map[fingerprint]*list.Element),
		disabled: max <= 0 || ttl <= 0,
	}
}

// get returns the live answer for key, if any.
func (c *cache) get(key fingerprint) (answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return answer{}, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.order.Remove(el)
		delete(c.byKey, key)
		return answer{}, false
	}
	c.order.MoveToFront(el)
	return e.answer, true
}

// put stores a directory answer: a mapping for the TTL, anything else for
// the negative TTL (nothing when that is zero).
func (c *cache) put(key fingerprint, a answer) {
	ttl := c.ttl
	if a.err != nil {
		ttl = c.negTTL
	}
	if c.disabled || ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &cacheEntry{key: key, answer: a, expires: c.now().Add(ttl)}
	if el, ok := c.byKey[key]; ok {
		el.Value = e
		c.order.MoveToFront(el)
		return
	}
	c.byKey[key] = c.order.PushFront(e)
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*cacheEntry).key)
		c.evicted++
	}
}

// len returns the number of entries, live or not yet purged.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// purge empties the cache.
func (c *cache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order.Init()
	clear(c.byKey)
}
