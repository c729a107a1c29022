package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The relay's upstream connections (engine_relay.go): a pool per Exchange
// host of HTTP/1.1 keep-alive connections, each with its own reusable
// bufio reader and writer, dialled with the transport's dialers (so the
// header watch, upstream_headerwatch.go, and the TLS settings are the
// proxy path's). An idle connection is a stack entry, nothing more: no
// goroutine reads it while it waits, so before reuse the relay asks the
// kernel whether it became readable (fresh), which catches both a
// connection Exchange closed and an answer nobody asked for.

// relayIdleTimeout is how long an idle upstream connection is kept, as the
// transport's IdleConnTimeout; below IIS's 120 s connection timeout, so the
// relay closes first.
const relayIdleTimeout = 90 * time.Second

// relayMaxIdle bounds the idle connections kept per upstream host, as the
// transport's MaxIdleConnsPerHost.
const relayMaxIdle = 512

// relayMax1xx bounds the informational answers read before the final one,
// as http.Transport does.
const relayMax1xx = 5

// relayPool holds the upstream connections per scheme and host: at most
// max open to a host (segmesh.edge.relayMaxConnsPerHost, as http.Transport's
// MaxConnsPerHost), idle and in use together; a request that finds them all
// in use waits for one, at most wait (then errRelayBusy, 503).
type relayPool struct {
	s    *Service
	max  int
	wait time.Duration
	mu   sync.Mutex
	// hosts are the connections per poolKey.
	hosts map[relayKey]*relayHost
	// live are the poolKeys of the Exchange URLs in force (retain): a
	// connection to any other host, one a reload removed, is not kept.
	live map[relayKey]bool
	// closed is set by closeIdle on Stop: connections given back afterwards
	// are closed.
	closed bool
	// sent counts the requests written to Exchange (the status page's
	// relay_requests).
	sent atomic.Int64
	// busy counts the requests refused because every connection to their
	// host stayed in use (relay_busy_refused).
	busy atomic.Int64
}

// relayHost is one upstream host's connections.
type relayHost struct {
	idle []*relayConn
	// open counts the connections open or being dialled, idle and in use.
	open int
	// freed, when not nil, is closed at the next connection given back or
	// closed: it wakes the requests waiting for one.
	freed chan struct{}
}

func newRelayPool(s *Service, urls []*url.URL) *relayPool {
	p := &relayPool{s: s, max: s.cfg.RelayMaxConnsPerHost, wait: s.cfg.RelayConnWait, hosts: map[relayKey]*relayHost{}}
	p.retain(urls)
	return p
}

// relayConn is one upstream connection with its buffers.
type relayConn struct {
	key  relayKey
	conn net.Conn
	raw  syscall.RawConn // the TCP socket under conn, for fresh
	lim  *headerLimit    // bounds a response's header bytes
	br   *bufio.Reader
	bw   *bufio.Writer
	idle time.Time // when it was given back
	// reused reports whether a request was sent on it before.
	reused bool
	tls    bool
	// gone is set when the pool stopped counting it (discard).
	gone bool
	// poll is the readiness check fresh hands to raw.Read, made once per
	// connection (a closure per request was an allocation per request);
	// ready and pollErr are its answer.
	poll    func(fd uintptr) bool
	ready   bool
	pollErr error
}

// relayKey names an upstream's connections: its scheme and host (a
// struct, not the joined string, which cost an allocation per request).
type relayKey struct{ scheme, host string }

// poolKey names u's connections.
func poolKey(u *url.URL) relayKey { return relayKey{u.Scheme, u.Host} }

// errRelayBusy means every connection the relay may open to an Exchange
// host stayed in use while the request waited.
var errRelayBusy = errors.New("edge: relay: every connection to Exchange is in use")

// host returns key's connections; p.mu is held.
func (p *relayPool) host(key relayKey) *relayHost {
	h := p.hosts[key]
	if h == nil {
		h = &relayHost{}
		p.hosts[key] = h
	}
	return h
}

// get returns an idle connection to u that is still fresh, or dials one
// when fewer than max are open, or waits for one to be given back or
// closed.
func (p *relayPool) get(ctx context.Context, u *url.URL) (*relayConn, error) {
	key := poolKey(u)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		p.mu.Lock()
		h := p.host(key)
		if n := len(h.idle); n > 0 {
			pc := h.idle[n-1]
			h.idle[n-1] = nil
			h.idle = h.idle[:n-1]
			p.mu.Unlock()
			if time.Since(pc.idle) < relayIdleTimeout && pc.fresh() {
				return pc, nil
			}
			p.discard(pc)
			continue
		}
		if p.max == 0 || h.open < p.max {
			h.open++
			p.mu.Unlock()
			pc, err := p.dial(ctx, u, key)
			if err != nil {
				p.mu.Lock()
				p.forget(key, h)
				p.mu.Unlock()
				return nil, err
			}
			return pc, nil
		}
		if h.freed == nil {
			h.freed = make(chan struct{})
		}
		freed := h.freed
		p.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(p.wait)
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, fmt.Errorf("edge: relay: waiting for a connection to %s: %w", u.Host, context.Cause(ctx))
		case <-timer.C:
			p.busy.Add(1)
			return nil, fmt.Errorf("%w: %d connections to %s (segmesh.edge.relayMaxConnsPerHost), none given back in %s", errRelayBusy, p.max, u.Host, p.wait)
		}
	}
}

// forget stops counting one of h's connections and wakes the requests
// waiting for one; p.mu is held.
func (p *relayPool) forget(key relayKey, h *relayHost) {
	h.open--
	p.wake(h)
	if h.open == 0 && !p.live[key] {
		delete(p.hosts, key)
	}
}

// wake wakes the requests waiting for one of h's connections; p.mu is held.
func (p *relayPool) wake(h *relayHost) {
	if h.freed != nil {
		close(h.freed)
		h.freed = nil
	}
}

// discard closes pc and stops counting it.
func (p *relayPool) discard(pc *relayConn) {
	_ = pc.conn.Close()
	if pc.gone {
		return
	}
	pc.gone = true
	p.mu.Lock()
	if h := p.hosts[pc.key]; h != nil {
		p.forget(pc.key, h)
	}
	p.mu.Unlock()
}

// dial connects to u with the proxy path's dialers: the transport's
// (watched) TLS dialer for https, its (watched) dialer for http.
func (p *relayPool) dial(ctx context.Context, u *url.URL, key relayKey) (*relayConn, error) {
	t := p.s.upstreams.transport
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	var c net.Conn
	var err error
	switch {
	case u.Scheme == "https" && t.DialTLSContext != nil:
		c, err = t.DialTLSContext(ctx, "tcp", addr)
	case u.Scheme == "https":
		c, err = p.s.dialUpstream(ctx, u)
	default:
		c, err = t.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	pc := &relayConn{key: key, conn: c}
	pc.poll = func(fd uintptr) bool {
		pc.ready, pc.pollErr = pollReady(fd)
		return true
	}
	under := unwatched(c)
	_, pc.tls = under.(*tls.Conn)
	if sc, ok := rawConn(under).(syscall.Conn); ok {
		pc.raw, _ = sc.SyscallConn()
	}
	if pc.raw == nil {
		_ = c.Close()
		return nil, errors.New("edge: relay: upstream connection has no file descriptor")
	}
	pc.lim = newHeaderLimit(c, p.s.cfg.MaxResponseHeaderBytes)
	pc.br = bufio.NewReaderSize(pc.lim, 4096)
	pc.bw = bufio.NewWriterSize(c, 4096)
	return pc, nil
}

// fresh reports whether an idle connection may carry a request: nothing
// has arrived on it since its last answer. Readable means Exchange closed
// it (end of stream), or sent bytes nobody asked for, which read as the
// next request's answer would hand one user's answer to another. Over
// TLS, readable may also be a TLS 1.3 session ticket: the record is read
// with a short deadline, and the connection is fresh when it held no
// application data; not readable, the TLS connection is still read with a
// deadline already passed, for the bytes it decrypted already.
func (pc *relayConn) fresh() bool {
	if pc.br.Buffered() > 0 {
		return false
	}
	if err := pc.raw.Read(pc.poll); err != nil || pc.pollErr != nil {
		return false
	}
	ready := pc.ready
	if !pc.tls {
		return !ready // plain TCP: readable is data or the end
	}
	// Over TLS, bytes nobody asked for may be in no socket at all: sent in
	// the same record as the end of the last answer, they were decrypted
	// into the TLS connection's own buffer when the relay read that end
	// (TestAttackRelayTLSAnswerNobodyAskedFor). A read with a deadline
	// already passed returns them, and otherwise ends at once without
	// taking a byte from the socket.
	wait := time.Duration(0)
	if ready {
		wait = parkTLSWait
	}
	_ = pc.conn.SetReadDeadline(time.Now().Add(wait))
	_, err := pc.br.Peek(1)
	_ = pc.conn.SetReadDeadline(time.Time{})
	return isTimeout(err) && pc.br.Buffered() == 0
}

// isTimeout reports whether err is a net.Error timeout; the type assertion
// first, since errors.As's target escapes to the heap.
func isTimeout(err error) bool {
	if ne, ok := err.(net.Error); ok { //nolint:errorlint // errors.As below for wrapped ones
		return ne.Timeout()
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// unwatched returns c without the header watch's wrapper.
func unwatched(c net.Conn) net.Conn {
	if w, ok := c.(*watchedConn); ok {
		return w.Conn
	}
	return c
}

// put gives pc back for the next request; it is closed instead when bytes
// past the answer are buffered (an answer nobody asked for), the pool is
// full or closed, or a reload removed its host.
func (p *relayPool) put(pc *relayConn) {
	if pc.br.Buffered() > 0 {
		p.discard(pc)
		return
	}
	pc.idle, pc.reused = time.Now(), true
	p.mu.Lock()
	h := p.hosts[pc.key]
	if p.closed || !p.live[pc.key] || h == nil || len(h.idle) >= relayMaxIdle {
		p.mu.Unlock()
		p.discard(pc)
		return
	}
	// The oldest are at the bottom: drop those past the idle timeout.
	n := 0
	for n < len(h.idle) && pc.idle.Sub(h.idle[n].idle) >= relayIdleTimeout {
		n++
	}
	old := append([]*relayConn(nil), h.idle[:n]...)
	if n > 0 {
		h.idle = append(h.idle[:0], h.idle[n:]...)
	}
	h.idle = append(h.idle, pc)
	p.wake(h)
	p.mu.Unlock()
	for _, o := range old {
		p.discard(o)
	}
}

// retain makes urls the hosts in force: the idle connections to any other
// host are closed now, and those in use when given back (put).
func (p *relayPool) retain(urls []*url.URL) {
	live := make(map[relayKey]bool, len(urls))
	for _, u := range urls {
		live[poolKey(u)] = true
	}
	var gone []*relayConn
	p.mu.Lock()
	p.live = live
	for k, h := range p.hosts {
		if !live[k] {
			gone = append(gone, h.idle...)
			h.idle = nil
		}
	}
	p.mu.Unlock()
	for _, pc := range gone {
		p.discard(pc)
	}
}

// closeIdle closes the idle connections; those in use are closed when
// given back.
func (p *relayPool) closeIdle() {
	var gone []*relayConn
	p.mu.Lock()
	p.closed = true
	for _, h := range p.hosts {
		gone = append(gone, h.idle...)
		h.idle = nil
	}
	p.mu.Unlock()
	for _, pc := range gone {
		p.discard(pc)
	}
}

// conns returns the connections open to u, idle and in use.
func (p *relayPool) conns(u *url.URL) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h := p.hosts[poolKey(u)]; h != nil {
		return h.open
	}
	return 0
}

// idleCount returns the idle connections to u.
func (p *relayPool) idleCount(u *url.URL) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h := p.hosts[poolKey(u)]; h != nil {
		return len(h.idle)
	}
	return 0
}

// write sends out on pc, and gives its answer's header a fresh budget.
func (pc *relayConn) write(out *http.Request) error {
	pc.lim.reset()
	if err := out.Write(pc.bw); err != nil {
		return fmt.Errorf("edge: relay: send the request to %s: %w", out.URL.Host, err)
	}
	if err := pc.bw.Flush(); err != nil {
		return fmt.Errorf("edge: relay: send the request to %s: %w", out.URL.Host, err)
	}
	return nil
}

// read reads the final answer to out; informational answers go to
// informational1xx (at most relayMax1xx), each with a header budget of its
// own.
func (pc *relayConn) read(out *http.Request, informational1xx func(*http.Response) error) (*http.Response, error) {
	for n := 0; ; n++ {
		resp, err := http.ReadResponse(pc.br, out)
		if err != nil {
			if pc.lim.lr.N <= 0 {
				return nil, fmt.Errorf("edge: relay: %w (%d bytes)", errResponseHeadersTooLarge, pc.lim.max)
			}
			return nil, fmt.Errorf("edge: relay: read Exchange's answer: %w", err)
		}
		if !informational(resp.StatusCode) {
			pc.lim.lift()
			return resp, nil
		}
		if n >= relayMax1xx {
			return nil, fmt.Errorf("edge: relay: more than %d informational answers from Exchange", relayMax1xx)
		}
		if err := informational1xx(resp); err != nil {
			return nil, err
		}
		pc.lim.reset()
	}
}
