package certmap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// pool hands out bound directory connections. At most size operations run
// at once (the semaphore) and at most size connections stay open; an idle
// connection older than idleTimeout is closed rather than reused, since
// directories drop idle clients (AD after MaxConnIdleTime, 900 s).
type pool struct {
	sem         chan struct{}
	dial        func(ctx context.Context) (*ldap.Conn, error)
	now         func() time.Time
	idleTimeout time.Duration

	mu     sync.Mutex
	idle   []idleConn // stack: the most recently used is last
	closed bool
}

type idleConn struct {
	conn  *ldap.Conn
	since time.Time
}

func newPool(size int, idleTimeout time.Duration, now func() time.Time, dial func(ctx context.Context) (*ldap.Conn, error)) *pool {
	return &pool{sem: make(chan struct{}, size), dial: dial, now: now, idleTimeout: idleTimeout}
}

var errPoolClosed = errors.New("connection pool is closed")

// do runs fn on a bound connection. A connection that fails with a network
// error is closed; when it was a reused one, fn runs once more on a fresh
// connection, which is how the pool reconnects after the directory restarts
// or drops idle connections. ctx bounds the wait for a slot, the dial and
// fn: when it ends, the connection is closed to unblock fn.
func (p *pool) do(ctx context.Context, fn func(*ldap.Conn) error) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait for a directory connection: %w", ctx.Err())
	}
	defer func() { <-p.sem }()
	for attempt := 0; ; attempt++ {
		conn, reused, err := p.get(ctx)
		if err != nil {
			return err
		}
		err = runClosingOnPanic(ctx, conn, fn)
		if err == nil {
			p.put(conn)
			return nil
		}
		if !isConnBroken(err, conn) {
			p.put(conn) // an LDAP result code leaves the connection usable
			return err
		}
		_ = conn.Close()
		if !reused || attempt > 0 || ctx.Err() != nil {
			return err
		}
	}
}

// get returns an idle connection (reused true) or dials a new one.
func (p *pool) get(ctx context.Context) (conn *ldap.Conn, reused bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, errPoolClosed
	}
	now := p.now()
	var stale []*ldap.Conn
	for len(p.idle) > 0 {
		ic := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if ic.conn.IsClosing() || (p.idleTimeout > 0 && now.Sub(ic.since) >= p.idleTimeout) {
			stale = append(stale, ic.conn)
			continue
		}
		conn = ic.conn
		break
	}
	p.mu.Unlock()
	for _, c := range stale {
		_ = c.Close()
	}
	if conn != nil {
		return conn, true, nil
	}
	conn, err = p.dial(ctx)
	return conn, false, err
}

// put returns a healthy connection to the idle stack, or closes it when the
// pool is closed or full.
func (p *pool) put(conn *ldap.Conn) {
	p.mu.Lock()
	if p.closed || conn.IsClosing() || len(p.idle) >= cap(p.sem) {
		p.mu.Unlock()
		_ = conn.Close()
		return
	}
	p.idle = append(p.idle, idleConn{conn: conn, since: p.now()})
	p.mu.Unlock()
}

// idleCount returns the number of idle connections.
func (p *pool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// close closes the idle connections and makes further use fail; connections
// in use are closed when they come back.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, ic := range idle {
		_ = ic.conn.Close()
	}
}

// runWithContext runs fn on conn and closes conn if ctx ends first, which
// makes a blocked go-ldap call return (go-ldap's synchronous calls take no
// context).
func runWithContext(ctx context.Context, conn *ldap.Conn, fn func(*ldap.Conn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	err := fn(conn)
	if !stop() {
		// ctx ended and closed the connection: report why.
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// runClosingOnPanic is runWithContext that closes conn when fn panics (a
// parser meeting a directory answer it did not expect), and lets the panic
// go on to the caller, whose recovery reports it: the connection's state is
// then unknown, and neither back in the pool nor closed it stayed open
// until the directory dropped it (TestPanickingLookupClosesItsConnection).
func runClosingOnPanic(ctx context.Context, conn *ldap.Conn, fn func(*ldap.Conn) error) error {
	returned := false
	defer func() {
		if !returned {
			_ = conn.Close()
		}
	}()
	err := runWithContext(ctx, conn, fn)
	returned = true
	return err
}

// isConnBroken reports whether err means conn can no longer be used.
func isConnBroken(err error, conn *ldap.Conn) bool {
	var ne net.Error
	switch {
	case conn.IsClosing(),
		ldap.IsErrorWithCode(err, ldap.ErrorNetwork),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled),
		errors.As(err, &ne):
		return true
	}
	return false
}
