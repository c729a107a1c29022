package edge

import (
	"context"
	"net/http"
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
// failed on main (the lot kept the Ping). The second send, after
// Exchange's 401, runs in run, where recoverRun covers it: it stays as a
// regression case.
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
