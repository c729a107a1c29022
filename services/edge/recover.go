package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"go.opentelemetry.io/otel/metric"
)

// panicRecovery is the device side's outermost handler. net/http already
// recovers a handler's panic and closes that connection, but it reports it
// on the server's ErrorLog, which the edge keeps at debug level (it also
// carries every failed TLS handshake): a panic on a device's bytes would
// pass unseen. This logs it at error level with its stack, counts it
// (telemetry.MetricEdgeHandlerPanics), and lets net/http close the
// connection as before (http.ErrAbortHandler, which net/http does not log
// again). An http.ErrAbortHandler panicked by the proxy on purpose (an
// answer cut short) is passed on untouched.
type panicRecovery struct {
	next   http.Handler
	log    *slog.Logger
	panics metric.Int64Counter
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
		p.log.Error("a device request caused a panic in the edge's handler; its connection was closed and the edge keeps serving",
			"method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		p.panics.Add(context.WithoutCancel(r.Context()), 1)
		panic(http.ErrAbortHandler)
	}()
	p.next.ServeHTTP(w, r)
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
	s.log.Error("a device's TLS handshake caused a panic in the edge; the handshake was refused and the edge keeps serving",
		"in", where, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	s.metrics.panics.Add(context.Background(), 1)
	*err = refusal("internal", nil, errHandshakePanic)
}
