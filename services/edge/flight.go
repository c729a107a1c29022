package edge

import (
	"context"
	"sync"
	"time"
)

// flight makes concurrent misses for one key share one call (a small,
// generic singleflight: golang.org/x/sync is not a dependency).
type flight[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*flightCall[V]
}

type flightCall[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// do runs fn once for all callers of key that overlap it. A caller whose ctx
// ends stops waiting; the call itself runs on with the first caller's
// context detached from cancellation (so one impatient device does not fail
// the others) and bounded by timeout (device requests have no deadline of
// their own).
func (f *flight[K, V]) do(ctx context.Context, key K, timeout time.Duration, fn func(context.Context) (V, error)) (V, bool, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[K]*flightCall[V]{}
	}
	c, shared := f.calls[key]
	if !shared {
		c = &flightCall[V]{done: make(chan struct{})}
		f.calls[key] = c
		go func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
			defer cancel()
			c.val, c.err = fn(cctx)
			f.mu.Lock()
			delete(f.calls, key)
			f.mu.Unlock()
			close(c.done)
		}()
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.val, shared, c.err
	case <-ctx.Done():
		var zero V
		return zero, shared, ctx.Err()
	}
}
