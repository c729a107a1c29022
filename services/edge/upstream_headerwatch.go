package edge

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Waiting for Exchange's response headers.
//
// ResponseHeaderTimeout protects the proxy path against an Exchange that
// accepts a request and never answers. http.Transport enforces it with a
// timer per request (time.NewTimer, a third channel in the wait's select,
// the deferred Stop): 2–4 µs per request in the edge's profiles
// (docs/benchmarks.md, "Edge", "Run 5"). The edge enforces it per upstream
// connection instead: each connection notes when the last bytes of a
// request were written and forgets it when the first bytes of the answer
// arrive (two atomic stores per request), and one sweeper per edge looks
// at the connections every tick and ends the read of any that waited
// longer than the timeout. The request then fails with an error wrapping
// context.DeadlineExceeded (504, as for a parked Ping) and the connection
// is closed by the transport, as with http.Transport's own timer.
//
// Differences from http.Transport's timer, none weakening the protection
// against a hung Exchange: the wait ends at the first byte of the answer
// rather than at the end of its headers (IIS writes its headers at once);
// it starts when the request's last write starts rather than when it ends
// (so an upstream that stops reading a request body for longer than the
// timeout is cut too); and it is enforced between the timeout and the
// timeout plus one tick.

// headerWatch is the sweeper over the proxy path's upstream connections.
type headerWatch struct {
	timeout time.Duration
	tick    time.Duration
	epoch   time.Time // monotonic clock origin of the connections' stamps

	mu    sync.Mutex
	conns map[*watchedConn]struct{}
}

// maxHeaderWatchTick bounds the sweeper's period: the timeout is enforced
// at most this late.
const maxHeaderWatchTick = time.Second

func newHeaderWatch(timeout time.Duration) *headerWatch {
	tick := min(maxHeaderWatchTick, max(timeout/8, time.Millisecond))
	return &headerWatch{timeout: timeout, tick: tick, epoch: time.Now(), conns: map[*watchedConn]struct{}{}}
}

// since returns the monotonic time since the epoch, never 0.
func (w *headerWatch) since() int64 { return int64(time.Since(w.epoch)) | 1 }

// dialer wraps dial so that its connections are watched.
func (w *headerWatch) dialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return w.watch(c), nil
	}
}

// tlsDialer dials HTTPS upstreams for the transport and watches the TLS
// connection, not the TCP one under it: a TLS 1.3 server that asks for or
// accepts client certificates, or OpenSSL's, sends its session tickets after
// the client's Finished, i.e. after the first request was written, and
// watched below TLS those bytes would end the wait of each connection's
// first request. tls.Conn's Read returns only application data. The
// handshake is sessions' (upstream_sessions.go: tc cloned, ServerName from
// addr, addr's own session cache, bounded by handshakeTimeout).
func (w *headerWatch) tlsDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error), sessions *upstreamSessions, tc *tls.Config, handshakeTimeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	plain := sessions.tlsDialer(dial, tc, handshakeTimeout)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := plain(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return w.watch(c), nil
	}
}

// watch registers c and returns it wrapped.
func (w *headerWatch) watch(c net.Conn) *watchedConn {
	wc := &watchedConn{Conn: c, w: w}
	w.mu.Lock()
	w.conns[wc] = struct{}{}
	w.mu.Unlock()
	return wc
}

// run sweeps every tick until ctx ends.
func (w *headerWatch) run(ctx context.Context) {
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.sweep()
		}
	}
}

// sweep ends the wait of every connection whose request has waited longer
// than the timeout for its first answer byte, and returns how many.
func (w *headerWatch) sweep() int {
	now := w.since()
	var late []*watchedConn
	w.mu.Lock()
	for c := range w.conns {
		if at := c.sent.Load(); at != 0 && time.Duration(now-at) > w.timeout {
			late = append(late, c)
		}
	}
	w.mu.Unlock()
	for _, c := range late {
		c.timedOut.Store(true)
		// The transport's read returns at once; Read turns its error
		// into errHeaderTimeout.
		_ = c.Conn.SetReadDeadline(time.Unix(1, 0))
	}
	return len(late)
}

// len returns the number of watched connections.
func (w *headerWatch) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.conns)
}

// headerTimeoutError is the error of a request whose answer did not start
// within ResponseHeaderTimeout. It wraps context.DeadlineExceeded.
type headerTimeoutError struct{ timeout time.Duration }

func (e *headerTimeoutError) Error() string {
	return fmt.Sprintf("edge: no response headers from Exchange within %s (the longest EAS heartbeat plus one minute)", e.timeout)
}

func (e *headerTimeoutError) Unwrap() error { return context.DeadlineExceeded }

// Timeout reports true, as net.Error's callers expect of a timeout.
func (e *headerTimeoutError) Timeout() bool { return true }

// Temporary reports false: the connection is given up.
func (e *headerTimeoutError) Temporary() bool { return false }

// watchedConn is an upstream connection of the proxy path. sent is the
// monotonic stamp (headerWatch.since) of the last write not yet followed by
// a read of answer bytes; 0 when nothing is awaited.
type watchedConn struct {
	net.Conn
	w        *headerWatch
	sent     atomic.Int64
	timedOut atomic.Bool
	closed   atomic.Bool
}

// Write sends request bytes and starts (or restarts) the wait for the
// answer. The stamp goes first: stamped after the write, it could land after
// a quick answer's first bytes had cleared it, and a slow body would later
// be cut as if no answer had come.
func (c *watchedConn) Write(b []byte) (int, error) {
	c.sent.Store(c.w.since())
	return c.Conn.Write(b)
}

// Read reads answer bytes; the first ones end the wait.
func (c *watchedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.sent.Load() != 0 {
		c.sent.Store(0)
	}
	if err != nil && c.timedOut.Load() {
		err = &headerTimeoutError{timeout: c.w.timeout}
	}
	return n, err
}

// Close closes the connection and stops watching it.
func (c *watchedConn) Close() error {
	if !c.closed.Swap(true) {
		c.w.mu.Lock()
		delete(c.w.conns, c)
		c.w.mu.Unlock()
	}
	return c.Conn.Close()
}
