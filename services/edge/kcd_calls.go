package edge

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/segmesh/segmesh/pkg/flight"
)

// sharedCalls makes concurrent cache misses for one key share one call to
// a role (pkg/flight, golang.org/x/sync/singleflight underneath). The call
// runs detached from its first caller's cancellation (one impatient device
// does not fail the others) and is bounded by timeout instead (device
// requests have no deadline of their own); a caller whose context ends
// stops waiting.
//
// A panic of the call (a client or parser meeting an answer it did not
// expect) is recovered in the call's goroutine and raised again in each
// waiting caller's: the device request's, where panicRecovery logs it with
// both stacks, counts it and closes that device's connection
// (TestAttackPanicInTheFetchReachesTheCaller). Nothing of it is cached.
// g.OnPanic, set by the Service, logs and counts every one, also one with
// no caller left to take it (a background refresh).
type sharedCalls[V any] struct {
	g       flight.Group[V]
	timeout time.Duration
	// background counts the calls started by background that have not
	// ended (tests wait for 0).
	background atomic.Int32
}

// start begins, or joins, the call for key.
func (c *sharedCalls[V]) start(ctx context.Context, key string, fn func(context.Context) (V, error)) <-chan singleflight.Result {
	detached := context.WithoutCancel(ctx)
	return c.g.DoChan(key, func() (V, error) {
		cctx, cancel := context.WithTimeout(detached, c.timeout)
		defer cancel()
		return fn(cctx)
	})
}

// do returns the result of the call for key, fn's unless another caller
// started it first.
func (c *sharedCalls[V]) do(ctx context.Context, key string, fn func(context.Context) (V, error)) (V, error) {
	return c.g.Wait(ctx, c.start(ctx, key, fn))
}

// backgroundDo starts, or joins, the call for key without waiting for it.
// A panic of the call reaches the callers that wait for it with do, if any,
// and g.OnPanic; none is raised here, where nothing could recover it.
func (c *sharedCalls[V]) backgroundDo(ctx context.Context, key string, fn func(context.Context) (V, error)) {
	c.background.Add(1)
	ch := c.start(ctx, key, fn)
	go func() {
		<-ch
		c.background.Add(-1)
	}()
}
