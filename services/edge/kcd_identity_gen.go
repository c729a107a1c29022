package edge

import (
	"context"
	"sync/atomic"
	"time"
)

// generationEvery is how often the identity cache asks the identity role
// for its mapping generation. It bounds how long the edge keeps answering
// from mappings made under settings a reload replaced: at most
// generationEvery plus one RPC timeout after the identity role applied the
// change, while the identity role answers. In split mode the edge's own
// configuration may not change at all, so the edge cannot learn of the
// change any other way. One small call per period per edge, whatever the
// traffic.
const generationEvery = 10 * time.Second

// generationSource is what the identity cache asks the generation of; the
// identity role's gRPC client implements it (test fakes may not, and then
// entries live for their TTL as before).
type generationSource interface {
	// MappingGeneration returns the identity role's mapping generation.
	MappingGeneration(ctx context.Context) (uint64, error)
}

// generation tracks the identity role's mapping generation: a hash of the
// settings that decide a mapping, the same in every replica running the
// same settings (services/identity). It changes when a reload changes
// how certificates map; the cache then uses no entry of another
// generation. While several identity replicas run different settings (a
// rollout), the generation follows the last answer and entries of the other
// are asked again: more calls for the rollout's duration, never an answer
// of settings no replica runs any more past the bound above.
type generation struct {
	src      generationSource
	cur      atomic.Uint64 // last heard; 0 before any
	checked  atomic.Int64  // Unix nanoseconds of the last check started
	checking atomic.Bool
}

// current reports whether an entry of generation g may be used: the
// generation is unknown on either side (a role that does not say) or the
// same.
func (g *generation) current(gen uint64) bool {
	cur := g.cur.Load()
	return cur == 0 || gen == 0 || gen == cur
}

// observe records generation gen heard from the identity role; when it
// differs from the one held, the entries of other generations are dropped.
func (c *identityCache) observe(gen uint64) {
	if gen == 0 {
		return
	}
	old := c.gen.cur.Swap(gen)
	if old == 0 || old == gen {
		return
	}
	c.mu.Lock()
	dropped := 0
	for k, e := range c.m {
		if e.id.Generation != gen {
			delete(c.m, k)
			dropped++
		}
	}
	c.mu.Unlock()
	if c.onGeneration != nil {
		c.onGeneration(old, gen, dropped)
	}
}

// checkGeneration starts, when one is due and none is running, a call
// that asks the identity role for its generation. It does not wait: the
// request that found it due is answered from the cache as it is.
func (c *identityCache) checkGeneration(now time.Time) {
	g := &c.gen
	if g.src == nil || now.UnixNano()-g.checked.Load() < int64(generationEvery) || !g.checking.CompareAndSwap(false, true) {
		return
	}
	g.checked.Store(now.UnixNano())
	go func() {
		defer g.checking.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), c.calls.timeout)
		defer cancel()
		if gen, err := g.src.MappingGeneration(ctx); err == nil {
			c.observe(gen)
		}
	}()
}

// setTTL changes how long new entries are kept (a reload of
// segmesh.identity.cacheTtlSeconds); entries already cached keep theirs.
func (c *identityCache) setTTL(ttl time.Duration) { c.ttl.Store(int64(ttl)) }
