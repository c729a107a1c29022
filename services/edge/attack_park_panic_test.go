package edge

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testmetric"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// armedTickets passes the edge's ticket calls to the ticket role until
// armed; then its client panics, as a parser meeting an answer it did not
// expect would.
type armedTickets struct {
	inner atomic.Pointer[grpcTickets]
	armed atomic.Bool
}

func (a *armedTickets) GetServiceTicket(ctx context.Context, upn, spn string) (*Ticket, error) {
	if a.armed.Load() {
		panic("unexpected ticket answer for " + upn)
	}
	return a.inner.Load().GetServiceTicket(ctx, upn, spn)
}

func (a *armedTickets) Invalidate(ctx context.Context, upn, spn string) error {
	return a.inner.Load().Invalidate(ctx, upn, spn)
}

// armedNegotiator checks Exchange's mutual-authentication reply by
// panicking while armed (a parser meeting an AP-REP it did not expect).
type armedNegotiator struct {
	negotiator
	armed *atomic.Bool
}

func (n armedNegotiator) verifyReply(value string, sent time.Time) error {
	if n.armed.Load() {
		panic("unexpected AP-REP from Exchange")
	}
	return n.negotiator.verifyReply(value, sent)
}

// TestAttackPanicInAParkedPing: a parked Ping runs in a goroutine of its own
// (upstream_park.go run), not the device request's, so the device
// handler's recovery (panicRecovery) does not cover it. A panic there, in
// the ticket fetch after Exchange's 401 or in the check of Exchange's
// mutual-authentication reply (a client or parser meeting bytes it did not
// expect), ended the whole edge process: this test crashed the test binary
// on main. Now the device gets 503 with Retry-After (the edge's answer when
// it cannot complete a request for a reason of its own that may pass: the
// device tries again; never the panic value), both connections are closed,
// the park's counts go back to zero, the panic is logged at error level
// with its stack and counted once, and the edge keeps serving. A panic of
// the shared ticket call is counted by the call's group
// (segmesh_background_panics), not again as a handler panic: one panic,
// one alert (reportPanic).
func TestAttackPanicInAParkedPing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		want  string // the panic's text in the log
		stack string // a frame of the panic's stack in the log
		// handler is the count of segmesh_edge_handler_panics.
		handler int64
		arm     func(src *armedTickets, neg *atomic.Bool)
		reply   func(w http.ResponseWriter)
	}{
		{
			name:  "the ticket fetch after Exchange's 401",
			want:  "unexpected ticket answer for alice@lab.test",
			stack: "armedTickets",
			arm:   func(src *armedTickets, _ *atomic.Bool) { src.armed.Store(true) },
			reply: func(w http.ResponseWriter) {
				w.Header().Set("WWW-Authenticate", "Negotiate")
				w.WriteHeader(http.StatusUnauthorized)
			},
		},
		{
			name:    "the check of Exchange's mutual-authentication reply",
			want:    "unexpected AP-REP from Exchange",
			stack:   "upstream_park",
			handler: 1,
			arm:     func(_ *armedTickets, neg *atomic.Bool) { neg.Store(true) },
			reply: func(w http.ResponseWriter) {
				w.Header().Set("WWW-Authenticate", "Negotiate oYGgMIGdoAMKAQA=")
				_, _ = w.Write([]byte("pong"))
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &armedTickets{}
			var negArmed atomic.Bool
			real := newNegotiatorFactory(time.Now)
			factory := func(tk *Ticket) (negotiator, error) {
				n, err := real(tk)
				if err != nil {
					return nil, err
				}
				return armedNegotiator{negotiator: n, armed: &negArmed}, nil
			}
			h := newHarness(t, nil, options{tickets: src, negotiator: factory})
			cc, err := h.edge.conns.Conn(role.Ticket)
			if err != nil {
				t.Fatal(err)
			}
			src.inner.Store(newGRPCTickets(cc))
			reader := recordMetrics(t, h)
			hd := newHeld()
			hd.answer = tc.reply
			t.Cleanup(hd.let)
			h.exchange.handler = hd.handler
			cert := h.ca.issue(t, certOpts{cn: "alice", serial: 4242})
			base := h.warm(t, &cert)

			d := h.device(t, &cert)
			d.send(pingPath, "<Ping/>")
			waitFor(t, "Ping parked", func() bool { return h.edge.parking.len() == 1 && hd.entered.Load() == 1 })
			var ping *parkedPing
			h.edge.parking.mu.Lock()
			for p := range h.edge.parking.pings {
				ping = p
			}
			h.edge.parking.mu.Unlock()
			tc.arm(src, &negArmed)
			hd.let()

			resp, body, err := d.read()
			if err != nil {
				t.Fatalf("the device got no answer to its Ping: %v (log:\n%s)", err, h.logs)
			}
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != strconv.Itoa(h.edge.cfg.RetryAfter) || !resp.Close {
				t.Fatalf("answer %d Retry-After %q close %v, want 503, Retry-After %d and the connection closed",
					resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close, h.edge.cfg.RetryAfter)
			}
			if strings.Contains(body, "unexpected") || body != http.StatusText(http.StatusServiceUnavailable)+"\n" {
				t.Fatalf("answer body %q, want the status text only", body)
			}
			if _, _, err := d.read(); err == nil {
				t.Fatal("the device connection still serves after the panic")
			}
			waitFor(t, "the parked Ping gone", func() bool {
				held, answered := h.edge.parking.counts()
				return h.edge.parking.len() == 0 && held == 0 && answered == 0
			})
			ping.mu.Lock()
			up := ping.up
			ping.mu.Unlock()
			if _, err := up.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err == nil {
				t.Fatal("the Ping's upstream connection is still open")
			}
			log := h.logs.String()
			for _, want := range []string{"level=ERROR", "parked Ping", tc.want, "goroutine ", tc.stack} {
				if !strings.Contains(log, want) {
					t.Fatalf("log lacks %q:\n%s", want, log)
				}
			}
			if n := testmetric.Sum(t, reader, telemetry.MetricEdgeHandlerPanics); n != tc.handler {
				t.Fatalf("%s = %d, want %d", telemetry.MetricEdgeHandlerPanics, n, tc.handler)
			}

			// The edge keeps serving: the same user, on a new connection.
			src.armed.Store(false)
			negArmed.Store(false)
			d2 := h.device(t, &cert)
			d2.send(syncPath, "<Sync/>")
			if resp, body, err := d2.read(); err != nil || resp.StatusCode != 200 || body != "Sync body=7" {
				t.Fatalf("Sync after the panic: %v %v %q", err, resp, body)
			}
			_ = d2.c.Close()
			goroutinesBack(t, base)
		})
	}
}
