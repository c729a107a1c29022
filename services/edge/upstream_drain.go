package edge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Draining the device side when the edge stops.
//
// An EAS Ping waits at Exchange up to an hour, so a drain that waits for
// Pings to be answered waits for nothing useful and then cuts them. Stop
// instead:
//
//  1. reports not ready at once (Ready, hence /readyz and grpc.health);
//  2. keeps the listener open for DrainGrace (a balancer, or Kubernetes'
//     endpoints, take seconds to stop sending new connections), holding the
//     Pings that arrive meanwhile at Exchange as usual;
//  3. when the grace ends (at once without one), answers every Ping held at
//     Exchange — parked, proxied over HTTP/2, or proxied because it could
//     not be parked — with what Exchange itself answers when a heartbeat
//     expires without changes: 200, a WBXML Ping with Status 1 (MS-ASCMD
//     2.2.3.177.11), and Connection: close, so the device sends its next
//     Ping at once on a new connection, which the balancer, now aware this
//     replica is not ready, sends to another. Answered at the start of the
//     grace, most devices came straight back here (bench/drain.sh). With
//     segmesh.edge.drainSpreadMillis the answers are spread over a window
//     in a random order (upstream_drain_spread.go);
//  4. closes the listener, waits for the connections it accepted to send
//     their first request (door_drain.go), and lets the other requests
//     (Syncs, attachments) finish until the drain deadline; a Ping that
//     still arrives on an open connection is answered at once without going
//     to Exchange.
//
// The device sees a normal end of its heartbeat: no error, no 503, no
// backoff, and it keeps holding a Ping (a notification is lost only if it
// falls in the few milliseconds of the reconnection, which Exchange's next
// Ping reports anyway: the device Syncs the folders it finds changed).

// errPingDrained ends a proxied Ping the stopping edge answers itself.
var errPingDrained = errors.New("edge: stopping: Ping answered with Status 1 so the device sends it again elsewhere")

// pingStatus1 is the WBXML (MS-ASWBXML) of <Ping xmlns="Ping:"><Status>1</Status></Ping>:
// header (version 1.3, public id 1, UTF-8, no string table), SWITCH_PAGE to
// code page 13 (Ping), Ping and Status tags with content, STR_I "1", END, END.
var pingStatus1 = []byte{0x03, 0x01, 0x6a, 0x00, 0x00, 0x0d, 0x45, 0x47, 0x03, '1', 0x00, 0x01, 0x01}

// setPingStatus1Header sets the headers of the drained Ping's answer.
func setPingStatus1Header(h http.Header) {
	h.Set("Content-Type", "application/vnd.ms-sync.wbxml")
	h.Set("Content-Length", strconv.Itoa(len(pingStatus1)))
	h.Set("Cache-Control", "private")
	// On HTTP/2 Go's server turns this into a GOAWAY once the stream ends.
	h.Set("Connection", "close")
}

// writePingStatus1 answers a Ping with Status 1 and Connection: close.
func writePingStatus1(w http.ResponseWriter) {
	setPingStatus1Header(w.Header())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(pingStatus1)
}

// pingStatus1Response is the same answer for a parked Ping, which writes
// its response itself.
func pingStatus1Response() *http.Response {
	h := http.Header{}
	setPingStatus1Header(h)
	return &http.Response{StatusCode: http.StatusOK, Header: h, ContentLength: int64(len(pingStatus1)),
		Body: io.NopCloser(bytes.NewReader(pingStatus1))}
}

// isPing reports whether state is an ActiveSync Ping.
func isPing(state *requestState) bool { return strings.EqualFold(state.eas.Cmd, "Ping") }

// isHeld reports whether state is a request Exchange holds until something
// changes, which the drain answers: a Ping, or a Sync that waits
// (eas_wait.go). They go through the reverse proxy, not the relay.
func isHeld(state *requestState) bool { return isPing(state) || state.wait != syncNoWait }

// writeHeldAnswer answers a held request as Exchange does when its wait
// ends without changes: Ping Status 1, or an empty Sync response; both
// with Connection: close.
func writeHeldAnswer(w http.ResponseWriter, state *requestState) {
	if state != nil && state.wait != syncNoWait {
		writeEmptySync(w)
		return
	}
	writePingStatus1(w)
}

// pingDrain tracks the Pings that go through the reverse proxy (HTTP/2,
// and those that could not be parked) so Stop can answer them.
type pingDrain struct {
	mu sync.Mutex
	// ended reports whether Pings are answered at once, without Exchange
	// (after the grace).
	ended bool
	calls map[*proxiedPing]struct{}
}

// proxiedPing is one Ping in the reverse proxy.
type proxiedPing struct {
	cancel context.CancelCauseFunc
	// outcome is pingWaiting until either Exchange's response headers come
	// (pingAnswered: the answer goes through) or Stop cancels the upstream
	// request (pingDrained: the edge answers), whichever is first. Atomic,
	// not under pingDrain.mu: Stop wakes thousands of Pings while each
	// answered one's goroutine takes mu to untrack itself, and a lock per
	// wake queued behind all of them (bench/drain.sh: 22 s for 4,900).
	outcome atomic.Int32
}

// The outcomes of a proxied Ping (proxiedPing.outcome).
const (
	pingWaiting int32 = iota
	pingAnswered
	pingDrained
)

type proxiedPingKey struct{}

// track registers a Ping about to be proxied and returns its request with a
// context Stop can cancel. It returns a nil request when Pings are answered
// at once.
func (d *pingDrain) track(r *http.Request) (*http.Request, *proxiedPing) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ended {
		return nil, nil
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	c := &proxiedPing{cancel: cancel}
	if d.calls == nil {
		d.calls = map[*proxiedPing]struct{}{}
	}
	d.calls[c] = struct{}{}
	return r.WithContext(context.WithValue(ctx, proxiedPingKey{}, c)), c
}

// untrack forgets c once its request is over.
func (d *pingDrain) untrack(c *proxiedPing) {
	d.mu.Lock()
	delete(d.calls, c)
	d.mu.Unlock()
	c.cancel(nil)
}

// held returns every proxied Ping still waiting for Exchange, for Stop to
// answer with Status 1 (wake); with end, Pings that come later are
// answered at once.
func (d *pingDrain) held(end bool) []*proxiedPing {
	d.mu.Lock()
	defer d.mu.Unlock()
	if end {
		d.ended = true
	}
	var out []*proxiedPing
	for c := range d.calls {
		if c.outcome.Load() == pingWaiting {
			out = append(out, c)
		}
	}
	return out
}

// wake cancels c's upstream request, so it is answered with Status 1,
// unless Exchange answered it meanwhile or it ended. It reports whether
// it did.
func (d *pingDrain) wake(c *proxiedPing) bool {
	if !c.outcome.CompareAndSwap(pingWaiting, pingDrained) {
		return false
	}
	c.cancel(errPingDrained)
	return true
}

// isEnded reports whether Pings are answered at once.
func (d *pingDrain) isEnded() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ended
}

// pingTransport marks a proxied Ping answered when Exchange's response
// headers arrive, so that Stop no longer cancels it (cancelling while the
// body is copied would cut the device's answer), and turns a request Stop
// cancelled into errPingDrained for proxyError. Any other request's wait
// for Exchange's answer is recorded (segmesh_edge_upstream_seconds): a
// Ping waits for mail, not for Exchange.
type pingTransport struct {
	s     *Service
	inner http.RoundTripper
}

func (t pingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c, _ := req.Context().Value(proxiedPingKey{}).(*proxiedPing)
	if c == nil {
		start := time.Now()
		resp, err := t.inner.RoundTrip(req)
		t.s.metrics.upstreamDone(req.Context(), time.Since(start))
		return resp, err
	}
	resp, err := t.inner.RoundTrip(req)
	if !c.outcome.CompareAndSwap(pingWaiting, pingAnswered) {
		if resp != nil {
			_ = resp.Body.Close()
		}
		return nil, errPingDrained
	}
	return resp, err
}

// answerHeldAtOnce tells whether r is a Sync that waits (state.wait) and,
// once the grace is over, answers a Ping with Status 1 and a Sync with a
// Wait or HeartbeatInterval with an empty Sync response without sending
// them to Exchange. It reports whether it answered.
func (s *Service) answerHeldAtOnce(w http.ResponseWriter, r *http.Request, state *requestState) bool {
	state.wait = waitOf(r, state)
	if !isPing(state) && state.wait != syncWaiting || !s.stopping.Load() || !s.drain.isEnded() {
		return false
	}
	writeHeldAnswer(w, state)
	return true
}

// proxyTracked sends r through the reverse proxy; a held request (a Ping,
// a Sync that waits) is tracked so Stop can answer it.
func (s *Service) proxyTracked(w http.ResponseWriter, r *http.Request, state *requestState) {
	if !isHeld(state) {
		s.rproxy.ServeHTTP(w, r)
		return
	}
	tr, c := s.drain.track(r)
	if tr == nil {
		writeHeldAnswer(w, state)
		return
	}
	defer s.drain.untrack(c)
	s.rproxy.ServeHTTP(w, tr)
}

// answerDrainedPing writes the drained answer (Ping Status 1, an empty
// Sync response) for a proxied held request Stop cancelled. It reports
// whether err was that.
func (s *Service) answerDrainedPing(w http.ResponseWriter, r *http.Request, err error) bool {
	if !errors.Is(err, errPingDrained) && !errors.Is(context.Cause(r.Context()), errPingDrained) {
		return false
	}
	state, _ := r.Context().Value(requestKey{}).(*requestState)
	if refused := s.recheckHeld(r); refused != nil {
		if state == nil {
			writeFailure(w, failureOf(refused, s.cfg.RetryAfter))
		} else {
			s.fail(w, state, refused)
		}
		return true
	}
	writeHeldAnswer(w, state)
	return true
}

// heldPings returns every parked Ping still held at Exchange, for Stop to
// answer with Status 1 (wakeIfHeld); with end, no Ping is parked any more
// (they are answered at once).
func (lot *parking) heldPings(end bool) []*parkedPing {
	lot.mu.Lock()
	defer lot.mu.Unlock()
	if end {
		lot.closing = true
	}
	var held []*parkedPing
	for ping, idle := range lot.pings {
		if !idle && !ping.woken() {
			held = append(held, ping)
		}
	}
	return held
}

// wakeIfHeld wakes ping unless Exchange answered it meanwhile (the answer
// is on its way to the device, or delivered) or it was woken already. It reports
// whether it did. It reads the Ping's own atomics, never lot.mu: each
// answered Ping's goroutine needs lot.mu to finish, and a lock per wake
// queued behind all of them (bench/drain.sh: 22 s for 4,900; 5,000 closes
// under lot.mu once kept them all waiting).
func (lot *parking) wakeIfHeld(ping *parkedPing) bool {
	if ping.woken() || ping.stage.Load() >= stageDelivering {
		return false
	}
	ping.wake()
	return true
}

// wake marks a Ping held at Exchange drained and closes its upstream
// connection, which ends its wait: it answers Status 1 (drainedAnswer).
func (ping *parkedPing) wake() {
	ping.mu.Lock()
	defer ping.mu.Unlock()
	ping.drained.Store(true)
	if ping.up != nil {
		// The TCP connection underneath: closing a *tls.Conn first sends
		// close_notify, on which Exchange ends the held request and may
		// answer (an empty 200) before the socket is closed, and the woken
		// Ping would deliver that instead of Status 1.
		_ = rawConn(ping.up).Close()
	}
}

// The stages of a parked Ping (parkedPing.stage), which the drain logs when
// Pings are still finishing after parkSlowLog: where a slow exit waits.
const (
	stageSending    int32 = iota // tryPark: dialling and writing to Exchange
	stageHeld                    // waiting for Exchange's answer
	stageDelivering              // writing the answer to the device
	stageIdle                    // answered, waiting for the device's next request
)

var stageNames = [...]string{"sending", "held", "delivering", "idle"}

// parkSlowLog is how long the drain waits for parked Pings before logging
// where they are.
const parkSlowLog = 250 * time.Millisecond

// stages counts the parked Pings by stage, with how many Stop woke.
func (lot *parking) stages() map[string]int {
	lot.mu.Lock()
	defer lot.mu.Unlock()
	m := map[string]int{}
	for ping := range lot.pings {
		m[stageNames[ping.stage.Load()]]++
		if ping.woken() {
			m["woken"]++
		}
	}
	return m
}

// woken reports whether wake ran.
func (ping *parkedPing) woken() bool { return ping.drained.Load() }

// cut ends a Ping still held at the drain deadline: both connections
// closed, no answer.
func (ping *parkedPing) cut() {
	ping.stopped.Store(true)
	ping.mu.Lock()
	defer ping.mu.Unlock()
	if ping.up != nil {
		_ = ping.up.Close()
	}
	if ping.dev != nil {
		_ = ping.dev.Close()
	}
}

// closeIdle closes the device connection of an answered Ping that waits for
// the device's next request.
func (ping *parkedPing) closeIdle() { _ = ping.dev.Close() }

// drainedAnswer replaces the outcome of a parked Ping that Stop woke: the
// Status 1 answer, after which the device connection is closed.
func (ping *parkedPing) drainedAnswer(resp *http.Response, err error) (*http.Response, error) {
	if err == nil || !ping.drained.Load() {
		return resp, err
	}
	ping.closeDevice = true
	return pingStatus1Response(), nil
}

// drainDevices is the device side of Stop: see the comment at the top of
// this file.
func (s *Service) drainDevices(ctx context.Context) error {
	if g := s.cfg.DrainGrace; g > 0 && s.srv != nil {
		s.log.Info("stopping: still accepting connections during the grace; held Pings are answered when it ends", "grace", g)
		after := s.opts.after
		if after == nil {
			after = time.After
		}
		select {
		case <-after(g):
		case <-ctx.Done():
		}
	}
	s.answerPings(ctx)
	var err error
	if s.srv != nil {
		s.log.Info("stopping: closing the listener; other requests finish within the drain timeout")
		t0 := time.Now()
		s.closeListener(ctx)
		t1 := time.Now()
		if err = s.srv.Shutdown(ctx); err != nil {
			s.log.Warn("drain cut short; closing the remaining device connections", "err", err)
			err = s.srv.Close()
		}
		// Where the exit time goes (bench/drain.sh, docs/benchmarks.md).
		s.log.Info("stopping: device connections closed", "new_connections_wait", t1.Sub(t0), "requests_finish", time.Since(t1))
	}
	if s.parking != nil {
		// Parked Pings are hijacked connections the server does not wait for.
		if n := s.parking.len(); n > 0 {
			s.log.Info("waiting for parked Pings", "count", n)
		}
		t := time.Now()
		slow := func(st map[string]int) {
			s.log.Info("stopping: parked Pings still finishing", "waited", time.Since(t), "stages", st)
		}
		if perr := s.parking.drain(ctx, parkSlowLog, slow); perr != nil {
			s.log.Warn("drain cut short; closed the parked Pings still held", "err", perr)
			err = errors.Join(err, perr)
		}
		s.log.Info("stopping: parked Pings ended", "took", time.Since(t))
	}
	return err
}
