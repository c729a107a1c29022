package edge

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/negotiate"
)

// headerPanics builds Negotiate headers by panicking while armed (a
// client meeting a session key or certificate it did not expect).
type headerPanics struct {
	negotiator
	armed *atomic.Bool
}

func (n headerPanics) header(cb negotiate.Binding) (string, time.Time, error) {
	if n.armed.Load() {
		panic("unexpected session key for alice@lab.test")
	}
	return n.negotiator.header(cb)
}

// stopWithin runs Stop and fails t when it has not returned after d. A Stop
// that hangs is unblocked by taking what is left out of the parking lot, so
// that the test binary goes on.
func stopWithin(t *testing.T, h *harness, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d/4)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- h.edge.Stop(ctx) }()
	select {
	case <-stopped:
		return
	case <-time.After(d):
	}
	n := emptyLot(h)
	<-stopped
	t.Fatalf("Stop did not return within %s: %d parked Ping(s) nobody would take out of the lot", d, n)
}

// emptyLot takes every Ping out of h's parking lot and returns how many
// there were.
func emptyLot(h *harness) int {
	h.edge.parking.mu.Lock()
	var left []*parkedPing
	for p := range h.edge.parking.pings {
		left = append(left, p)
	}
	h.edge.parking.mu.Unlock()
	for _, p := range left {
		h.edge.parking.done(p)
	}
	return len(left)
}

// TestAttackPanicWhileSendingAParkedPing: a panic while a Ping is sent to
// Exchange on its own connection (here building its Negotiate header;
// dialling, the TLS handshake and the outbound header rule are in the same
// span). The first send runs in the device request's goroutine (tryPark),
// after the Ping was put in the parking lot and before run, whose deferred
// parking.done takes it out, was started: panicRecovery ended the request,
// but the lot kept a Ping no goroutine would ever end. It was counted held
// on /status and in segmesh_edge_parked_pings for ever, and Stop, after
// cutting it at the drain deadline, waited for it without end
// (parking.drain's <-idle): the edge never exited on SIGTERM. This case
// failed on main (the lot kept the Ping; fixed in 527440e). The second
// send, after Exchange's 401, runs in run, where recoverRun covers the
// Ping. On both sends the connection dialled for the send that panicked
// was not yet the Ping's, and nothing closed it until a garbage
// collection's finalizer: with collection off, both cases failed on main
// there (one open connection to Exchange left per panic).
func TestAttackPanicWhileSendingAParkedPing(t *testing.T) {
	for _, tc := range []struct {
		name string
		// answer is Exchange's answer to the held Ping; nil: the panic
		// comes with the first send, before the Ping is held.
		answer func(w http.ResponseWriter)
	}{
		{name: "the first send, in the device request's goroutine"},
		{
			name: "the send after Exchange's 401, in run",
			answer: func(w http.ResponseWriter) {
				w.Header().Set("WWW-Authenticate", "Negotiate")
				w.WriteHeader(http.StatusUnauthorized)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// No collection during the test: the runtime's finalizer would
			// close a leaked connection at some later GC, hiding the leak.
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			var armed atomic.Bool
			real := newNegotiatorFactory(time.Now)
			factory := func(tk *Ticket) (negotiator, error) {
				n, err := real(tk)
				if err != nil {
					return nil, err
				}
				return headerPanics{negotiator: n, armed: &armed}, nil
			}
			h := newHarness(t, nil, options{negotiator: factory})
			t.Cleanup(func() { emptyLot(h) }) // before the harness's Stop, which would wait for them
			hd := newHeld()
			hd.answer = tc.answer
			t.Cleanup(hd.let)
			h.exchange.handler = hd.handler
			cert := h.ca.issue(t, certOpts{cn: "alice", serial: 4243})
			base := h.warm(t, &cert)
			exchange := h.exchange.srv.Listener.Addr().String()
			sockets := upstreamSockets(t, exchange)

			d := h.device(t, &cert)
			if tc.answer == nil {
				armed.Store(true)
				d.send(pingPath, "<Ping/>")
			} else {
				d.send(pingPath, "<Ping/>")
				waitFor(t, "Ping parked", func() bool { return h.edge.parking.len() == 1 && hd.entered.Load() == 1 })
				armed.Store(true)
				hd.let()
			}
			resp, body, err := d.read()
			if err == nil && (resp.StatusCode < 500 || strings.Contains(body, "unexpected")) {
				t.Fatalf("answer %d %q after the panic, want a failure without the panic value", resp.StatusCode, body)
			}
			waitFor(t, "the Ping out of the parking lot", func() bool {
				held, answered := h.edge.parking.counts()
				return h.edge.parking.len() == 0 && held == 0 && answered == 0
			})
			if log := h.logs.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "unexpected session key for alice@lab.test") {
				t.Fatalf("the panic is not in the error log:\n%s", log)
			}

			// No connection to Exchange is left open: neither the Ping's nor
			// the one dialled for the send that panicked.
			waitFor(t, "the connections to Exchange back to the pool's", func() bool { return upstreamSockets(t, exchange) <= sockets })

			// The edge keeps serving the same user.
			armed.Store(false)
			d2 := h.device(t, &cert)
			d2.send(syncPath, "<Sync/>")
			if resp, body, err := d2.read(); err != nil || resp.StatusCode != 200 || body != "Sync body=7" {
				t.Fatalf("Sync after the panic: %v %v %q", err, resp, body)
			}
			_ = d2.c.Close()
			_ = d.c.Close()
			goroutinesBack(t, base)
			stopWithin(t, h, 20*time.Second)
		})
	}
}

// upstreamSockets counts the open TCP connections (established, or closed
// by the peer but not here) to addr, a 127.0.0.1 listener, from
// /proc/net/tcp: the edge's connections to the fake Exchange, since
// nothing else dials it.
func upstreamSockets(t testing.TB, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	want := fmt.Sprintf("0100007F:%04X", p)
	n := 0
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[2] == want && (f[3] == "01" || f[3] == "08") {
			n++
		}
	}
	return n
}
