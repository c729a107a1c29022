package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/segmesh/segmesh/pkg/telemetry"
)

// Parking an EAS Ping.
//
// A Ping waits at Exchange up to an hour (HeartbeatInterval ≤ 3540 s) and
// most of a device fleet has one open at any time. Held through net/http
// it costs four goroutines (the server's conn.serve with the stack its TLS
// handshake grew, the server's background read, the transport's readLoop and
// writeLoop) and four 4 KiB bufio buffers plus a 2 KiB response buffer:
// 79 KB of RSS per Ping (docs/benchmarks.md, section "Scale"). A parked Ping
// holds only the device's *tls.Conn, its own upstream connection and two
// small goroutines that wait for readiness in syscall.RawConn.Read without
// a buffer: one on the upstream socket (the answer), one on the device
// socket (the device hanging up, which cancels the upstream request as
// net/http would). When Exchange answers, the response is read with a
// transient buffer, written to the device, and the device connection goes
// back to the http.Server through parkListener for its next request.
//
// Parking applies to HTTP/1.x requests with Cmd=Ping whose body is small
// enough to keep (ReplayMaxBytes), on platforms with pollReady (Linux).
// Everything else, and any Ping whose upstream cannot be reached or written
// to before the device connection is taken over, goes through the reverse
// proxy as before; such Pings are counted by reason
// (segmesh_edge_ping_fallbacks), the parked ones are a gauge
// (segmesh_edge_parked_pings) and a count on the status page.

// parkTLSWait is how long a TLS upstream's first readable bytes may take
// to become a response byte: TLS 1.3 servers send session tickets after the
// handshake, which wake the waiter without an answer.
const parkTLSWait = 500 * time.Millisecond

// errParkDrained ends a parked Ping still held at the drain deadline.
var errParkDrained = &Failure{Status: http.StatusServiceUnavailable, Reason: "edge stopping: Ping closed at the drain deadline"}

// pingFallback is why a Ping went through the reverse proxy instead of
// being parked. The zero value means the request was parkable (or no Ping).
type pingFallback int

const (
	fallbackNone     pingFallback = iota
	fallbackPlatform              // no pollReady on this platform
	fallbackProto                 // not HTTP/1.x (HTTP/2 multiplexes: nothing to hijack)
	fallbackHijack                // the ResponseWriter cannot be hijacked
	fallbackBody                  // the body was not kept (KCD off or over ReplayMaxBytes)
	fallbackUpgrade               // Upgrade or Expect header
	fallbackStopping              // the edge is stopping
	fallbackDial                  // no upstream could be dialled
	fallbackUpstream              // TLS handshake or write to the upstream failed
	numFallbacks
)

// pingFallbackReasons are the reason labels of segmesh_edge_ping_fallbacks.
var pingFallbackReasons = [numFallbacks]string{"", "platform", "not_http1", "no_hijack", "body_not_kept", "upgrade_or_expect", "stopping", "dial", "upstream"}

// parkable reports whether r may be parked; for a Ping that may not, it
// also says why.
func (s *Service) parkable(w http.ResponseWriter, r *http.Request, x *requestState) (bool, pingFallback) {
	if s.parking == nil || !strings.EqualFold(x.eas.Cmd, "Ping") {
		return false, fallbackNone
	}
	switch {
	case !pollSupported:
		return false, fallbackPlatform
	case r.ProtoMajor != 1:
		return false, fallbackProto
	}
	if _, ok := w.(http.Hijacker); !ok {
		return false, fallbackHijack
	}
	if r.Body != nil && r.Body != http.NoBody && r.GetBody == nil {
		return false, fallbackBody // KCD off: makeReplayable did not keep the body
	}
	if r.Header.Get("Upgrade") != "" || r.Header.Get("Expect") != "" {
		return false, fallbackUpgrade
	}
	return true, fallbackNone
}

// parkedPing is one Ping held without net/http.
type parkedPing struct {
	s     *Service
	ctx   context.Context // the request's values, never cancelled by the server
	span  trace.Span
	start time.Time
	req   *http.Request // the device's request
	x     *requestState
	rw    *recorder
	pr    *peer

	dev         *tls.Conn
	devRaw      syscall.RawConn
	closeDevice bool // bytes past the Ping were buffered by the server: close after answering

	mu       sync.Mutex
	up       net.Conn // *net.TCPConn or *tls.Conn
	upRaw    syscall.RawConn
	deadline time.Time // for the response header

	devGone  atomic.Bool // the device hung up
	stopped  atomic.Bool // Stop closed the connections at the drain deadline
	drained  atomic.Bool // Stop woke it to answer Status 1 (upstream_drain.go)
	watchEnd chan struct{}
}

// tryPark sends r upstream on a connection of its own and parks it. It
// reports whether it took the request over; false leaves r (body included)
// for the reverse proxy.
func (s *Service) tryPark(w http.ResponseWriter, r *http.Request, rw *recorder, x *requestState, span trace.Span, start time.Time) bool {
	ok, why := s.parkable(w, r, x)
	if !ok {
		if why != fallbackNone {
			s.metrics.pingFallback(why)
		}
		return false
	}
	ctx := context.WithoutCancel(r.Context())
	p := &parkedPing{s: s, ctx: ctx, span: span, start: start, req: r, x: x, rw: rw, watchEnd: make(chan struct{})}
	p.pr, _ = ctx.Value(peerKey{}).(*peer)
	if !s.parking.add(p) {
		s.metrics.pingFallback(fallbackStopping)
		return false
	}
	if err := p.send(ctx); err != nil {
		s.parking.done(p)
		if errors.Is(err, errNoNegotiate) {
			s.fail(rw, x, failureOf(err, s.cfg.RetryAfter))
			return true
		}
		if isDialError(err) {
			s.metrics.pingFallback(fallbackDial)
		} else {
			s.metrics.pingFallback(fallbackUpstream)
		}
		s.log.Debug("Ping not parked: upstream not ready; proxying it", "err", err)
		return false
	}
	c, brw, err := w.(http.Hijacker).Hijack()
	if err == nil {
		p.mu.Lock()
		p.dev, _ = c.(*tls.Conn)
		p.mu.Unlock()
	}
	if p.dev == nil {
		// Not reachable with the edge's listener. The request is already
		// upstream, so fail it rather than send it twice.
		if c != nil {
			_ = c.Close()
		}
		_ = p.up.Close()
		s.parking.done(p)
		s.fail(rw, x, failureOf(fmt.Errorf("edge: park Ping: hijack: %v", err), 0))
		return true
	}
	p.closeDevice = brw.Reader.Buffered() > 0
	if sc, ok := p.dev.NetConn().(syscall.Conn); ok {
		p.devRaw, err = sc.SyscallConn()
	}
	if p.devRaw == nil || err != nil {
		p.closeDevice = true
	}
	// The recorder must not keep the server's response: through it the
	// server's conn and its 4 KiB reader and writer would stay reachable
	// for the whole hold.
	rw.ResponseWriter = nil
	x.parked = true
	s.log.Debug("Ping parked", telemetry.AttrUPN, x.upn, telemetry.AttrDeviceID, x.eas.DeviceID)
	go p.run()
	return true
}

// run waits for the answer, delivers it and hands the device connection
// back. It is the parked Ping's goroutine; watchDevice is the other.
func (p *parkedPing) run() {
	defer p.s.parking.done(p)
	if p.devRaw != nil {
		go p.watchDevice()
	} else {
		close(p.watchEnd)
	}
	resp, err := p.await()
	resp, err = p.drainedAnswer(resp, err)
	p.endWatch()
	if p.devGone.Load() {
		err = fmt.Errorf("edge: device closed the connection during the Ping: %w", context.Canceled)
	} else if err == nil {
		err = p.recheck()
	}
	keep := p.deliver(resp, err)
	p.mu.Lock()
	up := p.up
	p.mu.Unlock()
	_ = up.Close()
	// A copy: the handler's deferred finish still reads x.parked.
	x := *p.x
	x.parked = false
	p.s.finish(p.ctx, p.span, p.rw, p.req.WithContext(p.ctx), &x, p.start)
	if keep {
		p.handBack()
	}
}

// await parks until the upstream answers, then reads the response; on a 401
// to a Kerberos request it invalidates the ticket and sends once more.
func (p *parkedPing) await() (*http.Response, error) {
	s, x := p.s, p.x
	for {
		resp, err := p.readResponse()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized || x.entry == nil || x.retried {
			return resp, nil
		}
		x.retried = true
		if !s.refreshAfter401(p.ctx, x) {
			return resp, nil
		}
		drain(resp.Body)
		e, _, err := s.tickets.get(p.ctx, x.upn, s.cfg.TargetSPN)
		if err != nil {
			return nil, err
		}
		x.entry = e
		s.log.Info("Exchange refused the ticket (401); retrying once with a new one", telemetry.AttrUPN, x.upn)
		if err := p.send(p.ctx); err != nil {
			return nil, err
		}
	}
}

// readResponse waits without a buffer until the upstream is readable, then
// reads the response header with a transient one. As the reverse proxy
// does on the proxy path, it relays informational answers (1xx but 101) to
// the device and reads on to the final one; each answer's header is bounded
// by MaxResponseHeaderBytes (upstream_parklimits.go).
func (p *parkedPing) readResponse() (*http.Response, error) {
	p.mu.Lock()
	up, rc, deadline := p.up, p.upRaw, p.deadline
	p.mu.Unlock()
	lim := newHeaderLimit(up, p.s.cfg.MaxResponseHeaderBytes)
	var br *bufio.Reader
	for br == nil {
		var perr error
		err := rc.Read(func(fd uintptr) bool {
			var ready bool
			ready, perr = pollReady(fd)
			return ready || perr != nil
		})
		if p.stopped.Load() {
			return nil, errParkDrained
		}
		if p.devGone.Load() {
			return nil, fmt.Errorf("edge: parked Ping ended: %w", context.Canceled)
		}
		if err == nil {
			err = perr
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("edge: no answer to the Ping within %s: %w", p.s.cfg.ResponseHeaderTimeout, context.DeadlineExceeded)
		}
		if err != nil {
			return nil, fmt.Errorf("edge: wait for the Ping's answer: %w", err)
		}
		br = bufio.NewReaderSize(lim, 4096)
		if tc, ok := up.(*tls.Conn); ok {
			// Readable may be a TLS session ticket, not the answer: look for
			// a byte briefly, and go back to waiting when none comes.
			_ = tc.SetReadDeadline(time.Now().Add(parkTLSWait))
			_, err := br.Peek(1)
			_ = tc.SetReadDeadline(deadline)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && br.Buffered() == 0 {
				p.s.log.Debug("Exchange connection woke without an answer (TLS session tickets); Ping parked again")
				br = nil
			}
		}
	}
	// After an informational answer the final one is read at once (the
	// connection's read deadline still bounds the wait): the TLS layer may
	// hold its bytes already, which polling the socket would not see.
	for {
		resp, err := http.ReadResponse(br, p.req)
		if err != nil {
			return nil, lim.explain(err)
		}
		if informational(resp.StatusCode) {
			if err := p.relayInformational(resp); err != nil {
				return nil, err
			}
			lim.reset()
			continue
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return nil, errors.New("edge: Exchange switched protocols on a Ping that asked for no upgrade")
		}
		lim.lift()
		_ = up.SetReadDeadline(time.Time{})
		return resp, nil
	}
}

// recheck refuses to deliver the answer to a device whose certificate was
// revoked, expired or lost its trust while the Ping was held.
func (p *parkedPing) recheck() error {
	s, pr := p.s, p.pr
	if pr != nil && pr.verified && s.cfg.RequireClientCert {
		if r := s.recheckPeer(pr); r != nil {
			p.closeDevice = true
			return r
		}
	}
	if pr == nil || !pr.verified || !s.cfg.Revocation || pr.revChecked.Load() == s.revocation.current() {
		return nil
	}
	gen, err := s.revocation.check(pr.leaf)
	if err != nil {
		r := refusal("revoked", pr.leaf, err)
		s.refused(r)
		p.closeDevice = true
		return r
	}
	pr.revChecked.Store(gen)
	return nil
}

// watchDevice waits for the device to hang up; then it closes the upstream
// connection, which ends the upstream request and wakes run.
func (p *parkedPing) watchDevice() {
	defer close(p.watchEnd)
	var gone bool
	_ = p.devRaw.Read(func(fd uintptr) bool {
		var err error
		gone, err = pollHangup(fd)
		gone = gone || err != nil
		return gone
	})
	if !gone {
		return // endWatch interrupted the wait
	}
	p.devGone.Store(true)
	p.mu.Lock()
	up := p.up
	p.mu.Unlock()
	_ = up.Close()
}

// endWatch stops watchDevice and waits for it.
func (p *parkedPing) endWatch() {
	if p.devRaw != nil {
		_ = p.dev.SetReadDeadline(time.Unix(1, 0))
	}
	<-p.watchEnd
	_ = p.dev.SetReadDeadline(time.Time{})
}

// deliver writes the answer (or the failure) to the device. It reports
// whether the connection stays open for a next request; if not, it is
// closed.
func (p *parkedPing) deliver(resp *http.Response, err error) bool {
	s, x, rw := p.s, p.x, p.rw
	if err != nil {
		f := failureOf(err, s.cfg.RetryAfter)
		x.failure = f
		if f.Status == 499 || p.stopped.Load() {
			_ = p.dev.Close()
			return false
		}
		fw := &failureWriter{h: http.Header{}}
		writeFailure(fw, f)
		resp = &http.Response{StatusCode: f.Status, Header: fw.h, Body: io.NopCloser(strings.NewReader(fw.body.String())),
			ContentLength: int64(fw.body.Len())}
	} else {
		removeHopByHop(resp.Header)
		if merr := s.modifyResponse(resp); merr != nil {
			return p.deliver(nil, merr)
		}
	}
	defer resp.Body.Close()
	closeDev := p.closeDevice || s.stopping.Load() || p.req.Close
	resp.ProtoMajor, resp.ProtoMinor, resp.Close, resp.Request = 1, 1, closeDev, nil
	resp.TransferEncoding = nil
	if resp.ContentLength < 0 {
		resp.TransferEncoding = []string{"chunked"}
	}
	cb := &countingBody{r: resp.Body}
	resp.Body = cb
	rw.status = resp.StatusCode
	bw := bufio.NewWriterSize(p.dev, 4096)
	werr := resp.Write(bw)
	if werr == nil {
		werr = bw.Flush()
	}
	rw.bytes = cb.n
	if werr != nil || closeDev {
		if werr != nil && x.failure == nil {
			x.failure = failureOf(fmt.Errorf("edge: write the Ping's answer: %w", context.Canceled), 0)
		}
		_ = p.dev.Close()
		return false
	}
	return true
}

// handBack waits, still without a buffer, for the device's next request
// (up to IdleTimeout, as the server waits between requests) and then gives
// the connection back to the server. Handed back at once, the connection
// would get only ReadHeaderTimeout, the server's limit for a new one.
func (p *parkedPing) handBack() {
	s := p.s
	if !s.parking.answered(p) {
		_ = p.dev.Close() // stopping
		return
	}
	if d := s.cfg.IdleTimeout; d > 0 {
		_ = p.dev.SetReadDeadline(time.Now().Add(d))
	}
	var perr error
	err := p.devRaw.Read(func(fd uintptr) bool {
		var ready bool
		ready, perr = pollReady(fd)
		return ready || perr != nil
	})
	_ = p.dev.SetReadDeadline(time.Time{})
	if err == nil {
		err = perr
	}
	if err != nil || s.stopping.Load() {
		_ = p.dev.Close()
		return
	}
	if p.pr != nil {
		s.peers.m.Store(p.dev.NetConn(), p.pr)
	}
	if !s.listener.giveBack(p.dev) {
		s.peers.remove(p.dev.NetConn())
		_ = p.dev.Close()
	}
}

// failureWriter collects a failure response for a parked Ping.
type failureWriter struct {
	h    http.Header
	code int
	body strings.Builder
}

func (w *failureWriter) Header() http.Header         { return w.h }
func (w *failureWriter) WriteHeader(code int)        { w.code = code }
func (w *failureWriter) Write(b []byte) (int, error) { return w.body.Write(b) }

// countingBody counts the body bytes written to the device.
type countingBody struct {
	r io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *countingBody) Close() error { return b.r.Close() }

// parking tracks the parked Pings for the drain on Stop: the value is true
// once the Ping was answered and its connection waits for the next request.
type parking struct {
	mu      sync.Mutex
	pings   map[*parkedPing]bool
	closing bool
	idle    chan struct{} // closed when pings empties while closing
	// sessions resumes TLS sessions with HTTPS upstreams.
	sessions tls.ClientSessionCache
}

func newParking() *parking {
	return &parking{pings: map[*parkedPing]bool{}, sessions: tls.NewLRUClientSessionCache(64)}
}

// add registers p; false once Stop began.
func (k *parking) add(p *parkedPing) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closing {
		return false
	}
	k.pings[p] = false
	return true
}

// answered marks p answered and its connection idle; false once Stop began (the server closes
// idle connections at once on Shutdown, and so does the edge).
func (k *parking) answered(p *parkedPing) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closing {
		return false
	}
	k.pings[p] = true
	return true
}

func (k *parking) done(p *parkedPing) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.pings, p)
	if k.closing && len(k.pings) == 0 && k.idle != nil {
		close(k.idle)
		k.idle = nil
	}
}

// len returns the number of parked Pings.
func (k *parking) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.pings)
}

// counts returns the parked Pings still held at Exchange and those answered
// whose connection waits for the device's next request before going back to
// the server.
func (k *parking) counts() (held, answered int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, idle := range k.pings {
		if idle {
			answered++
		} else {
			held++
		}
	}
	return held, answered
}

// drain refuses new Pings, waits for the parked ones to be answered until
// ctx ends, then closes the rest and waits for their goroutines.
func (k *parking) drain(ctx context.Context) error {
	k.mu.Lock()
	k.closing = true
	for p, idle := range k.pings {
		if idle {
			_ = p.dev.Close()
		}
	}
	if len(k.pings) == 0 {
		k.mu.Unlock()
		return nil
	}
	idle := make(chan struct{})
	k.idle = idle
	k.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	k.mu.Lock()
	for p := range k.pings {
		p.stopped.Store(true)
		p.mu.Lock()
		if p.up != nil {
			_ = p.up.Close()
		}
		if p.dev != nil {
			_ = p.dev.Close()
		}
		p.mu.Unlock()
	}
	k.mu.Unlock()
	<-idle
	return ctx.Err()
}
