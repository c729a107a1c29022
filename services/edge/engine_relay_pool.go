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

// relayPool holds the idle upstream connections per scheme and host.
type relayPool struct {
	s     *Service
	mu    sync.Mutex
	hosts map[string][]*relayConn
	// closed is set by closeIdle on Stop: connections given back afterwards
	// are closed.
	closed bool
	// sent counts the requests written to Exchange (the status page's
	// relay_requests).
	sent atomic.Int64
}

func newRelayPool(s *Service) *relayPool {
	return &relayPool{s: s, hosts: map[string][]*relayConn{}}
}

// relayConn is one upstream connection with its buffers.
type relayConn struct {
	key  string
	conn net.Conn
	raw  syscall.RawConn // the TCP socket under conn, for fresh
	lim  *headerLimit    // bounds a response's header bytes
	br   *bufio.Reader
	bw   *bufio.Writer
	idle time.Time // when it was given back
	// reused reports whether a request was sent on it before.
	reused bool
	tls    bool
}

// poolKey names u's connections.
func poolKey(u *url.URL) string { return u.Scheme + "://" + u.Host }

// get returns an idle connection to u that is still fresh, or dials one.
func (p *relayPool) get(ctx context.Context, u *url.URL) (*relayConn, error) {
	key := poolKey(u)
	now := time.Now()
	for {
		p.mu.Lock()
		idle := p.hosts[key]
		if len(idle) == 0 {
			p.mu.Unlock()
			break
		}
		pc := idle[len(idle)-1]
		idle[len(idle)-1] = nil
		p.hosts[key] = idle[:len(idle)-1]
		p.mu.Unlock()
		if now.Sub(pc.idle) < relayIdleTimeout && pc.fresh() {
			return pc, nil
		}
		_ = pc.conn.Close()
	}
	return p.dial(ctx, u, key)
}

// dial connects to u with the proxy path's dialers: the transport's
// (watched) TLS dialer for https, its (watched) dialer for http.
func (p *relayPool) dial(ctx context.Context, u *url.URL, key string) (*relayConn, error) {
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
	var ready bool
	var perr error
	err := pc.raw.Read(func(fd uintptr) bool {
		ready, perr = pollReady(fd)
		return true
	})
	if err != nil || perr != nil {
		return false
	}
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
	_, err = pc.br.Peek(1)
	_ = pc.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && pc.br.Buffered() == 0
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
// full or closed.
func (p *relayPool) put(pc *relayConn) {
	if pc.br.Buffered() > 0 {
		_ = pc.conn.Close()
		return
	}
	pc.idle, pc.reused = time.Now(), true
	p.mu.Lock()
	idle := p.hosts[pc.key]
	if p.closed || len(idle) >= relayMaxIdle {
		p.mu.Unlock()
		_ = pc.conn.Close()
		return
	}
	// The oldest are at the bottom: drop those past the idle timeout.
	n := 0
	for n < len(idle) && pc.idle.Sub(idle[n].idle) >= relayIdleTimeout {
		_ = idle[n].conn.Close()
		n++
	}
	if n > 0 {
		idle = append(idle[:0], idle[n:]...)
	}
	p.hosts[pc.key] = append(idle, pc)
	p.mu.Unlock()
}

// closeIdle closes the idle connections; those in use are closed when
// given back.
func (p *relayPool) closeIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for k, idle := range p.hosts {
		for _, pc := range idle {
			_ = pc.conn.Close()
		}
		delete(p.hosts, k)
	}
}

// idleCount returns the idle connections to u.
func (p *relayPool) idleCount(u *url.URL) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.hosts[poolKey(u)])
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
