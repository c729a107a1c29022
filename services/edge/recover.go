package edge

import (
	"context"
	"errors"
	"net/http"

	"github.com/segmesh/segmesh/pkg/flight"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// panicRecovery is the device side's outermost handler. net/http already
// recovers a handler's panic and closes that connection, but it reports it
// on the server's ErrorLog, which the edge keeps at debug level (it also
// carries every failed TLS handshake): a panic on a device's bytes would
// pass unseen. This reports it (reportPanic: at error level with its
// stack, within the log's rate, and counted in
// telemetry.MetricEdgeHandlerPanics), and lets net/http close the
// connection as before (http.ErrAbortHandler, which net/http does not log
// again). An http.ErrAbortHandler panicked by the proxy on purpose (an
// answer cut short) is passed on untouched.
type panicRecovery struct {
	next http.Handler
	s    *Service
}

func (p *panicRecovery) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel itself is panicked
			panic(v)
		}
		p.s.reportPanic(r.Context(), "a device request caused a panic in the edge's handler; its connection was closed and the edge keeps serving",
			v, "method", r.Method, "path", r.URL.Path)
		panic(http.ErrAbortHandler)
	}()
	p.next.ServeHTTP(w, r)
}

// reportPanic logs and counts a panic the edge recovered on a device's
// behalf (msg says where: a request's handler, a parked Ping, a TLS
// handshake; attrs add who), the one report of panicRecovery, recoverRun
// and recoverHandshake. The line goes through the edge's PanicLog: the
// value bounded, the stacks of the first few per minute only, so a panic
// a device can trigger at will does not write one stack per request; each
// panic is counted all the same (telemetry.MetricEdgeHandlerPanics).
//
// A shared role call's panic raised again in the waiting request
// (*flight.Panic, kcd_calls.go) was logged with its stack and counted
// where it happened, by the call's group (segmesh_background_panics,
// task edge_identity_call or edge_ticket_call): counted again here it made
// two alerts fire for one panic (rvpath's review). It gets one line
// naming the call, without the stack or a second count.
func (s *Service) reportPanic(ctx context.Context, msg string, v any, attrs ...any) {
	if p, ok := v.(*flight.Panic); ok {
		s.panicLines.Log(msg+" (a shared role call's panic, logged with its stack and counted with its task)",
			p.Call, telemetry.NoStack, attrs...)
		return
	}
	s.panicLines.Log(msg, v, nil, attrs...)
	s.metrics.panics.Add(context.WithoutCancel(ctx), 1)
}

// errHandshakePanic is the cause of a handshake refused because the edge's
// own code panicked on it.
var errHandshakePanic = errors.New("the edge failed while checking the device's certificate (a panic, logged with its stack); the handshake was refused")

// recoverHandshake, deferred in the handshake's callbacks (where: which),
// turns a panic there into a refused handshake. Those callbacks run the
// trust store, the revocation check and the distribution-point learning on
// a device's certificate; net/http would recover a panic in them too, but
// report it with the failed TLS handshakes on the server's ErrorLog, at the
// edge's debug level: unseen. It logs it at error level with its stack and
// counts it (telemetry.MetricEdgeHandlerPanics), and the device gets a
// failed handshake: fail closed, never the panic value.
func (s *Service) recoverHandshake(where string, err *error) {
	v := recover()
	if v == nil {
		return
	}
	s.reportPanic(context.Background(), "a device's TLS handshake caused a panic in the edge; the handshake was refused and the edge keeps serving",
		v, "in", where)
	*err = refusal("internal", nil, errHandshakePanic)
}
