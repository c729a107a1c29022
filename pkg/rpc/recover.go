package rpc

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/pkg/flight"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// recovery turns a panic in a role's gRPC handler into a codes.Internal
// answer to that one call. grpc-go runs each handler in its own goroutine
// and does not recover, so without it a panic (a parser of a KDC's or a
// directory's bytes meeting an input it did not expect) ends the whole
// process and every call and held connection in it. The caller gets a
// fixed message, never the panic value (it may carry a user's data); the
// value and the stack go to the log and the panic is counted
// (telemetry.MetricRPCHandlerPanics). It is written here rather than taken
// from go-grpc-middleware because it is twenty lines and the count must use
// segmesh's metric catalogue.
type recovery struct {
	// lines writes the panics' lines: the value bounded, the stacks of the
	// first few per minute only (telemetry.PanicLog), so a caller that can
	// make a handler panic at will does not write one stack per call.
	lines  *telemetry.PanicLog
	panics metric.Int64Counter
}

func newRecovery(log *slog.Logger, meter metric.Meter) *recovery {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if meter == nil {
		meter = metricnoop.NewMeterProvider().Meter("segmesh/rpc")
	}
	c, err := meter.Int64Counter(telemetry.MetricRPCHandlerPanics,
		metric.WithDescription("Role-to-role gRPC calls whose handler panicked (answered Internal, stack logged), by method."))
	if err != nil {
		// An SDK meter returns a usable instrument beside a name error;
		// the catalogue's names are valid, so this is not expected.
		log.Warn("rpc: creating the handler panic counter", "metric", telemetry.MetricRPCHandlerPanics, "err", err)
	}
	if c == nil {
		c, _ = metricnoop.NewMeterProvider().Meter("segmesh/rpc").Int64Counter(telemetry.MetricRPCHandlerPanics)
	}
	return &recovery{lines: telemetry.NewPanicLog(log, nil), panics: c}
}

// recovered logs and counts the panic value v of method's handler and
// returns the error its caller gets. The line goes through a PanicLog
// (value bounded, stacks rate-limited); every panic is counted. A shared
// call's panic raised again in the
// handler that waited for it (*flight.Panic) was logged with its stack and
// counted by the call's group (segmesh_background_panics, by task):
// counted here too, one panic fired two alerts (rvpath's review), so it
// gets one line naming the call and no second count.
func (r *recovery) recovered(ctx context.Context, method string, v any) error {
	if p, ok := v.(*flight.Panic); ok {
		r.lines.Log("a gRPC request ended on a shared call's panic; the call was answered Internal, the panic was logged with its stack and counted with its task",
			p.Call, telemetry.NoStack, "method", method)
	} else {
		r.lines.Log("a gRPC request caused a panic in its handler; the call was answered Internal and the process keeps serving",
			v, nil, "method", method)
		r.panics.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(attribute.String("method", method)))
	}
	return status.Errorf(codes.Internal, "the request caused an internal error in %s; the serving segmesh process logged it with its stack", method)
}

func (r *recovery) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if v := recover(); v != nil {
			resp, err = nil, r.recovered(ctx, info.FullMethod, v)
		}
	}()
	return h(ctx, req)
}

func (r *recovery) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = r.recovered(ss.Context(), info.FullMethod, v)
		}
	}()
	return h(srv, ss)
}
