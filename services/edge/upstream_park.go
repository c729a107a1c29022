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
func (s *Service) parkable(w http.ResponseWriter, r *http.Request, state *requestState) (bool, pingFallback) {
	if s.parking == nil || !isPing(state) {
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
	s       *Service
	ctx     context.Context // the request's values, never cancelled by the server
	span    trace.Span
	start   time.Time
	req     *http.Request // the device's request
	state   *requestState
	rec     *recorder
	devCert *peer // the device connection's certificate record

	dev         *tls.Conn
	devRaw      syscall.RawConn
	closeDevice bool // bytes past the Ping were buffered by the server: close after answering

	mu       sync.Mutex
	up       net.Conn // *net.TCPConn or *tls.Conn
	upRaw    syscall.RawConn
	deadline time.Time // for the response header

	devGone  atomic.Bool  // the device hung up
	stopped  atomic.Bool  // Stop closed the connections at the drain deadline
	drained  atomic.Bool  // Stop woke it to answer Status 1 (upstream_drain.go)
	stage    atomic.Int32 // a parkStage, for the drain's log
	watchEnd chan struct{}

	// phase is how far run got, for recoverRun; only run's goroutine
	// reads and writes it.
	phase runPhase
}

// tryPark sends r upstream on a connection of its own and parks it. It
// reports whether it took the request over; false leaves r (body included)
// for the reverse proxy.
func (s *Service) tryPark(w http.ResponseWriter, r *http.Request, rec *recorder, state *requestState, span trace.Span, start time.Time) bool {
	ok, why := s.parkable(w, r, state)
	if !ok {
		if why != fallbackNone {
			s.metrics.pingFallback(why)
		}
		return false
	}
	ctx := context.WithoutCancel(r.Context())
	ping := &parkedPing{s: s, ctx: ctx, span: span, start: start, req: r, state: state, rec: rec, watchEnd: make(chan struct{})}
	ping.devCert, _ = ctx.Value(peerKey{}).(*peer)
	if !s.parking.keep(ping, false) {
		s.metrics.pingFallback(fallbackStopping)
		return false
	}
	// Until run takes the Ping over (its deferred parking.done ends it),
	// leaving here takes it out of the lot and closes its upstream
	// connection, a panic too (panicRecovery ends the request): nothing
	// else would, the lot would count it held for ever and Stop would wait
	// for it without end (TestAttackPanicWhileSendingAParkedPing).
	running := false
	defer func() {
		if running {
			return
		}
		ping.mu.Lock()
		up := ping.up
		ping.mu.Unlock()
		if up != nil {
			_ = up.Close()
		}
		s.parking.done(ping)
	}()
	if err := ping.send(ctx); err != nil {
		if errors.Is(err, errNoNegotiate) {
			s.fail(rec, state, err)
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
		ping.mu.Lock()
		ping.dev, _ = c.(*tls.Conn)
		ping.mu.Unlock()
	}
	if ping.dev == nil {
		// Not reachable with the edge's listener. The request is already
		// upstream, so fail it rather than send it twice.
		if c != nil {
			_ = c.Close()
		}
		s.fail(rec, state, fmt.Errorf("edge: park Ping: hijack: %v", err))
		return true
	}
	ping.closeDevice = brw.Reader.Buffered() > 0
	if sc, ok := ping.dev.NetConn().(syscall.Conn); ok {
		ping.devRaw, err = sc.SyscallConn()
	}
	if ping.devRaw == nil || err != nil {
		ping.closeDevice = true
	}
	// The recorder must not keep the server's response: through it the
	// server's conn and its 4 KiB reader and writer would stay reachable
	// for the whole hold.
	rec.detach()
	state.parked = true
	s.log.Debug("Ping parked", telemetry.AttrUPN, state.upn, telemetry.AttrDeviceID, state.eas.DeviceID)
	running = true
	go ping.run()
	return true
}

// run waits for the answer, delivers it and hands the device connection
// back. It is the parked Ping's goroutine; watchDevice is the other.
func (ping *parkedPing) run() {
	defer ping.s.parking.done(ping)
	defer ping.recoverRun() // before done: the lot counts the Ping until it is over
	ping.stage.Store(stageHeld)
	if ping.devRaw != nil {
		go ping.watchDevice()
	} else {
		close(ping.watchEnd)
	}
	resp, err := ping.await()
	resp, err = ping.drainedAnswer(resp, err)
	ping.stage.Store(stageDelivering)
	ping.endWatch()
	ping.phase = phaseDelivering
	if ping.devGone.Load() {
		err = fmt.Errorf("edge: device closed the connection during the Ping: %w", context.Canceled)
	} else if err == nil {
		err = ping.recheck()
	}
	keep := ping.deliver(resp, err)
	ping.mu.Lock()
	up := ping.up
	ping.mu.Unlock()
	_ = up.Close()
	// A copy: the handler's deferred finish still reads state.parked.
	state := *ping.state
	state.parked = false
	ping.phase = phaseFinishing
	ping.s.finish(ping.ctx, ping.span, ping.rec, ping.req.WithContext(ping.ctx), &state, ping.start)
	if keep {
		ping.phase = phaseHandBack
		ping.stage.Store(stageIdle)
		ping.handBack()
	}
}

// await parks until the upstream answers, then reads the response; when
// the 401 rule (renewAfter401, policy.go) says so, it sends the Ping once
// more with the new ticket and parks again.
func (ping *parkedPing) await() (*http.Response, error) {
	for {
		resp, err := ping.readResponse()
		if err != nil {
			return nil, err
		}
		// The body is kept: parkable takes no other request.
		again, err := ping.s.renewAfter401(ping.ctx, ping.state, resp, true)
		if err != nil || !again {
			return resp, err
		}
		if err := ping.send(ping.ctx); err != nil {
			return nil, err
		}
	}
}

// readResponse waits without a buffer until the upstream is readable, then
// reads the response header with a transient one. As the reverse proxy
// does on the proxy path, it relays informational answers (1xx but 101) to
// the device and reads on to the final one; each answer's header is bounded
// by MaxResponseHeaderBytes (upstream_parklimits.go).
func (ping *parkedPing) readResponse() (*http.Response, error) {
	ping.mu.Lock()
	up, rc, deadline := ping.up, ping.upRaw, ping.deadline
	ping.mu.Unlock()
	lim := newHeaderLimit(up, ping.s.cfg.MaxResponseHeaderBytes)
	var br *bufio.Reader
	for br == nil {
		var perr error
		err := rc.Read(func(fd uintptr) bool {
			var ready bool
			ready, perr = pollReady(fd)
			return ready || perr != nil
		})
		if ping.stopped.Load() {
			return nil, errParkDrained
		}
		if ping.devGone.Load() {
			return nil, fmt.Errorf("edge: parked Ping ended: %w", context.Canceled)
		}
		if err == nil {
			err = perr
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("edge: no answer to the Ping within %s: %w", ping.s.cfg.ResponseHeaderTimeout, context.DeadlineExceeded)
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
				ping.s.log.Debug("Exchange connection woke without an answer (TLS session tickets); Ping parked again")
				br = nil
			}
		}
	}
	// After an informational answer the final one is read at once (the
	// connection's read deadline still bounds the wait): the TLS layer may
	// hold its bytes already, which polling the socket would not see.
	for {
		resp, err := http.ReadResponse(br, ping.req)
		if err != nil {
			return nil, lim.explain(err)
		}
		if informational(resp.StatusCode) {
			if err := ping.relayInformational(resp); err != nil {
				return nil, err
			}
			lim.reset()
			continue
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return nil, errSwitchedProtocols
		}
		lim.lift()
		_ = up.SetReadDeadline(time.Time{})
		return resp, nil
	}
}

// recheck applies the re-check rule (recheck, policy.go) before the answer
// is delivered: a device whose certificate was revoked, expired or lost
// its trust while the Ping was held gets the refusal, and the connection
// is closed.
func (ping *parkedPing) recheck() error {
	if refused := ping.s.recheck(ping.devCert); refused != nil {
		ping.closeDevice = true
		return refused
	}
	return nil
}

// watchDevice waits for the device to hang up; then it closes the upstream
// connection, which ends the upstream request and wakes run.
func (ping *parkedPing) watchDevice() {
	defer close(ping.watchEnd)
	var gone bool
	_ = ping.devRaw.Read(func(fd uintptr) bool {
		var err error
		gone, err = pollHangup(fd)
		gone = gone || err != nil
		return gone
	})
	if !gone {
		return // endWatch interrupted the wait
	}
	ping.devGone.Store(true)
	ping.mu.Lock()
	up := ping.up
	ping.mu.Unlock()
	_ = up.Close()
}

// endWatch stops watchDevice and waits for it.
func (ping *parkedPing) endWatch() {
	if ping.devRaw != nil {
		_ = ping.dev.SetReadDeadline(time.Unix(1, 0))
	}
	<-ping.watchEnd
	_ = ping.dev.SetReadDeadline(time.Time{})
}

// deliver writes the answer (or the failure) to the device. It reports
// whether the connection stays open for a next request; if not, it is
// closed.
func (ping *parkedPing) deliver(resp *http.Response, err error) bool {
	s, state, rec := ping.s, ping.state, ping.rec
	if err != nil {
		fw := &failureWriter{h: http.Header{}}
		s.fail(fw, state, err)
		if state.failure.Status == 499 || ping.stopped.Load() {
			_ = ping.dev.Close()
			return false
		}
		resp = &http.Response{StatusCode: state.failure.Status, Header: fw.h, Body: io.NopCloser(strings.NewReader(fw.body.String())),
			ContentLength: int64(fw.body.Len())}
	} else {
		if merr := s.modifyResponse(resp); merr != nil {
			return ping.deliver(nil, merr)
		}
	}
	defer resp.Body.Close()
	closeDev := ping.closeDevice || s.stopping.Load() || ping.req.Close
	resp.ProtoMajor, resp.ProtoMinor, resp.Close, resp.Request = 1, 1, closeDev, nil
	resp.TransferEncoding = nil
	if resp.ContentLength < 0 {
		resp.TransferEncoding = []string{"chunked"}
	}
	cb := &countingBody{r: resp.Body}
	resp.Body = cb
	bw := bufio.NewWriterSize(ping.dev, 4096)
	ping.phase = phaseWriting
	werr := resp.Write(bw)
	if werr == nil {
		werr = bw.Flush()
	}
	rec.record(resp.StatusCode, cb.n)
	if werr != nil || closeDev {
		if werr != nil && state.failure == nil {
			state.failure = failureOf(fmt.Errorf("edge: write the Ping's answer: %w", context.Canceled), 0)
		}
		_ = ping.dev.Close()
		return false
	}
	return true
}

// handBack waits, still without a buffer, for the device's next request
// (up to IdleTimeout, as the server waits between requests) and then gives
// the connection back to the server. Handed back at once, the connection
// would get only ReadHeaderTimeout, the server's limit for a new one.
func (ping *parkedPing) handBack() {
	s := ping.s
	if !s.parking.keep(ping, true) {
		_ = ping.dev.Close() // stopping
		return
	}
	if d := s.cfg.IdleTimeout; d > 0 {
		_ = ping.dev.SetReadDeadline(time.Now().Add(d))
	}
	var perr error
	err := ping.devRaw.Read(func(fd uintptr) bool {
		var ready bool
		ready, perr = pollReady(fd)
		return ready || perr != nil
	})
	_ = ping.dev.SetReadDeadline(time.Time{})
	if err == nil {
		err = perr
	}
	if err != nil || s.stopping.Load() {
		_ = ping.dev.Close()
		return
	}
	if ping.devCert != nil {
		s.peers.keep(ping.dev.NetConn(), ping.devCert)
	}
	if !s.listener.giveBack(ping.dev) {
		s.peers.remove(ping.dev.NetConn())
		_ = ping.dev.Close()
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
