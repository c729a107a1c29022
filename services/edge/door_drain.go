package edge

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Connections accepted during the drain grace.
//
// net/http's Shutdown closes a connection without an answer when it reads
// the connection's first request after Shutdown began (server.go: the
// shuttingDown check after readRequest). During the grace thousands of
// phones reconnect at once, so many connections accepted before the
// listener closes have not finished their TLS handshake, or sent their
// request, when it does: each would see EOF (bench/drain.sh). Stop therefore
// closes the listener itself, waits until every connection accepted has
// brought its first request to the handler (or closed, or waited
// newConnWait), and only then calls Shutdown.

// newConnWait bounds how long Stop waits for connections accepted before
// the listener closed to send their first request: net/http's Shutdown
// gives a new connection the same 5 s before closing it as idle.
const newConnWait = 5 * time.Second

// freshConn marks a device connection (one http.Server serve of it) whose
// first request has not yet reached the handler.
type freshConn struct {
	c    net.Conn
	done atomic.Bool
}

type freshConnKey struct{}

// freshConns tracks the device connections whose first request has not
// reached the handler.
type freshConns struct {
	mu    sync.Mutex
	m     map[net.Conn]*freshConn
	empty chan struct{} // closed when m empties while Stop waits
}

// add registers c (from ConnContext) and returns ctx carrying its mark.
func (f *freshConns) add(ctx context.Context, c net.Conn) context.Context {
	fc := &freshConn{c: c}
	f.mu.Lock()
	if f.m == nil {
		f.m = map[net.Conn]*freshConn{}
	}
	f.m[c] = fc
	f.mu.Unlock()
	return context.WithValue(ctx, freshConnKey{}, fc)
}

// served notes that a request of ctx's connection reached the handler.
func (f *freshConns) served(ctx context.Context) {
	if fc, _ := ctx.Value(freshConnKey{}).(*freshConn); fc != nil && !fc.done.Swap(true) {
		f.remove(fc.c)
	}
}

// state follows the server's ConnState hook: a connection idle (HTTP/2
// after its preface), closed or hijacked no longer waits.
func (f *freshConns) state(c net.Conn, st http.ConnState) {
	if st == http.StateIdle || st == http.StateClosed || st == http.StateHijacked {
		f.remove(c)
	}
}

func (f *freshConns) remove(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[c]; !ok {
		return
	}
	delete(f.m, c)
	if len(f.m) == 0 && f.empty != nil {
		close(f.empty)
		f.empty = nil
	}
}

// wait returns once no connection waits for its first request, ctx ends or
// bound fires; it returns how many still wait.
func (f *freshConns) wait(ctx context.Context, bound <-chan time.Time) int {
	f.mu.Lock()
	if len(f.m) == 0 {
		f.mu.Unlock()
		return 0
	}
	empty := make(chan struct{})
	f.empty = empty
	f.mu.Unlock()
	select {
	case <-empty:
		return 0
	case <-ctx.Done():
	case <-bound:
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.empty = nil
	return len(f.m)
}

// closeListener stops accepting device connections, then waits for those
// already accepted to bring their first request to the handler, so that
// Shutdown, called next, does not close them unanswered.
func (s *Service) closeListener(ctx context.Context) {
	if err := s.listener.Close(); err != nil {
		s.log.Warn("stopping: close the device listener", "err", err)
	}
	t := time.NewTimer(newConnWait)
	defer t.Stop()
	if n := s.fresh.wait(ctx, t.C); n > 0 {
		s.log.Info("stopping: connections accepted before the listener closed sent no request in time; closing them",
			"count", n, "waited", newConnWait)
	}
}
