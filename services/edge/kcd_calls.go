package edge

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// sharedCalls makes concurrent cache misses for one key share one call to
// a role (golang.org/x/sync/singleflight). The call runs detached from its
// first caller's cancellation (one impatient device does not fail the
// others) and is bounded by timeout instead (device requests have no
// deadline of their own); a caller whose context ends stops waiting.
//
// A panic of the call is recovered in the call's goroutine and raised again
// in each waiting caller's (see callPanic); nothing of it is cached.
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
	return c.g.DoChan(key, func() (v any, err error) {
		defer func() {
			if p := recover(); p != nil {
				v, err = nil, &callPanic{value: p, stack: debug.Stack()}
			}
		}()
		cctx, cancel := context.WithTimeout(detached, c.timeout)
		defer cancel()
		return fn(cctx)
	})
}

// callPanic is a panic of a shared call (a client or parser meeting an
// answer it did not expect), carried out of the call to be raised again in
// each waiting caller's goroutine: the device request's, where
// panicRecovery logs it with both stacks, counts it and closes that
// device's connection. The call runs in a goroutine of its own
// (singleflight's DoChan), which raises its function's panic in yet another
// goroutine that nothing can recover: one such answer ended the edge
// process (TestAttackPanicInTheFetchReachesTheCaller). services/ticket
// (be5f486) and pkg/certmap (09f35df) do the same for their shared calls.
type callPanic struct {
	value any
	stack []byte
}

func (p *callPanic) Error() string {
	return fmt.Sprintf("edge: a shared role call panicked: %v\n%s", p.value, p.stack)
}

// raiseCallPanic panics with err when it is a shared call's panic.
func raiseCallPanic(err error) {
	var p *callPanic
	if errors.As(err, &p) {
		panic(p)
	}
}

// do returns the result of the call for key, fn's unless another caller
// started it first.
func (c *sharedCalls[V]) do(ctx context.Context, key string, fn func(context.Context) (V, error)) (V, error) {
	select {
	case r := <-c.start(ctx, key, fn):
		raiseCallPanic(r.Err)
		v, _ := r.Val.(V)
		return v, r.Err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// backgroundDo starts, or joins, the call for key without waiting for it.
// A panic of the call reaches the callers that wait for it with do, if any;
// none is raised here, where nothing could recover it.
func (c *sharedCalls[V]) backgroundDo(ctx context.Context, key string, fn func(context.Context) (V, error)) {
	c.background.Add(1)
	ch := c.start(ctx, key, fn)
	go func() {
		<-ch
		c.background.Add(-1)
	}()
}
