package edge

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// sharedCalls makes concurrent cache misses for one key share one call to
// a role (golang.org/x/sync/singleflight). The call runs detached from its
// first caller's cancellation (one impatient device does not fail the
// others) and is bounded by timeout instead (device requests have no
// deadline of their own); a caller whose context ends stops waiting.
type sharedCalls[V any] struct {
	g       singleflight.Group
	timeout time.Duration
	// background counts the calls started by background that have not
	// ended (tests wait for 0).
	background atomic.Int32
}

// start begins, or joins, the call for key.
func (c *sharedCalls[V]) start(ctx context.Context, key string, fn func(context.Context) (V, error)) <-chan singleflight.Result {
	detached := context.WithoutCancel(ctx)
	return c.g.DoChan(key, func() (any, error) {
		cctx, cancel := context.WithTimeout(detached, c.timeout)
		defer cancel()
		return fn(cctx)
	})
}

// do returns the result of the call for key, fn's unless another caller
// started it first.
func (c *sharedCalls[V]) do(ctx context.Context, key string, fn func(context.Context) (V, error)) (V, error) {
	select {
	case r := <-c.start(ctx, key, fn):
		v, _ := r.Val.(V)
		return v, r.Err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// backgroundDo starts, or joins, the call for key without waiting for it.
func (c *sharedCalls[V]) backgroundDo(ctx context.Context, key string, fn func(context.Context) (V, error)) {
	c.background.Add(1)
	ch := c.start(ctx, key, fn)
	go func() {
		<-ch
		c.background.Add(-1)
	}()
}
