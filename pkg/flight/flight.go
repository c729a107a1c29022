// Package flight shares one call among the concurrent callers of a key and
// carries a panic of the call back to them, so that it can neither end the
// process nor pass unseen.
//
// It serves the calls segmesh shares on a cache miss: the ticket role's KDC
// exchange (services/ticket), the identity role's directory lookup
// (pkg/certmap) and the edge's calls to those roles (services/edge). Each
// runs in a goroutine of its own, on bytes a peer sent (a KDC reply, a
// directory answer, a role's answer), so a parser meeting bytes it did not
// expect may panic there, where no handler's recovery can take it.
//
// Sharing is golang.org/x/sync/singleflight underneath: it is the
// well-kept implementation, and its DoChan lets a caller stop waiting when
// its context ends while the call goes on for the others. What it does not
// do is the reason for this package: DoChan raises a panic of the call
// again in a new goroutine that nothing can recover ("go panic(e)" in its
// doCall), which ended the process with every role in it (session 7, the
// TestAttackPanicIn... tests of those three packages). Group runs each call
// under Guard, which returns its panic as a *Panic error; Wait raises it
// again in each waiting caller's goroutine, where that caller's recovery
// (pkg/rpc's for a gRPC handler, the edge's for a device request) answers,
// logs and counts it; OnPanic sees every panic, also one that no caller is
// left to take (a background refresh, callers whose contexts ended).
//
// Guard and Raise also serve a shared call that is not a singleflight one
// (pkg/certmap's lookup flights, which end with the mapper).
package flight

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"golang.org/x/sync/singleflight"
)

// Panic is a panic of a call, recovered in the goroutine the call ran in
// and carried out of it as an error, to be raised again (Raise) in a
// goroutine whose recovery can take it.
type Panic struct {
	// Call names what panicked, for the message ("ticket: the KDC
	// exchange").
	Call string
	// Value is what the call panicked with.
	Value any
	// Stack is the stack of the goroutine the call panicked in.
	Stack []byte
}

// Error gives the call, the value and the stack, for the log. A parser's
// panic value may quote what a peer sent: it is for the log, never for a
// peer.
func (p *Panic) Error() string {
	return fmt.Sprintf("%s panicked: %v\n%s", p.Call, p.Value, p.Stack)
}

// Guard runs fn and returns a panic of it as a *Panic error named call,
// with the zero V.
func Guard[V any](call string, fn func() (V, error)) (v V, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero V
			v, err = zero, &Panic{Call: call, Value: r, Stack: debug.Stack()}
		}
	}()
	return fn()
}

// Raise panics with err's *Panic when err is or wraps one; otherwise it
// returns.
func Raise(err error) {
	var p *Panic
	if errors.As(err, &p) {
		panic(p)
	}
}

// Group shares one call among the concurrent callers of a key, as
// singleflight.Group does, with each call run under Guard. The zero value
// is ready to use; set the fields before the first call.
type Group[V any] struct {
	// Call names the group's calls in their panics.
	Call string
	// OnPanic, when set, gets every panic of a call with its key, in the
	// call's goroutine, whether or not a caller still waits for it: a
	// background refresh, or a call whose callers all left, has nobody to
	// raise it to. It must not block.
	OnPanic func(key string, p *Panic)

	g singleflight.Group
}

// DoChan begins the call for key, or joins the one under way, as
// singleflight.Group.DoChan does. fn runs in a goroutine of its own; a
// panic of it comes back on the channel as a *Panic error (see Wait).
func (g *Group[V]) DoChan(key string, fn func() (V, error)) <-chan singleflight.Result {
	return g.g.DoChan(key, func() (any, error) {
		v, err := Guard(g.Call, fn)
		if p, ok := err.(*Panic); ok && g.OnPanic != nil { //nolint:errorlint // Guard returns the *Panic itself
			g.OnPanic(key, p)
		}
		return v, err
	})
}

// Wait returns the result of a call DoChan began, or ctx's error when ctx
// ends first (the call goes on for the others). A panic of the call is
// raised again here, in the caller's goroutine.
func (g *Group[V]) Wait(ctx context.Context, ch <-chan singleflight.Result) (V, error) {
	select {
	case r := <-ch:
		Raise(r.Err)
		v, _ := r.Val.(V)
		return v, r.Err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}
