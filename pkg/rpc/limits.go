package rpc

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
)

// MaxMessageBytes is the largest gRPC message one segmesh role sends to or
// accepts from another, in process and in split mode alike. It is gRPC's
// default receive limit made explicit and applied to both directions and
// both ends, so a message that fits one path fits every path: a payload that
// can outgrow it (a CRL snapshot) is cut into parts of at most
// MaxPartBytes.
const MaxMessageBytes = 4 << 20

// MaxPartBytes is the size a streamed payload is cut to (the crl role's
// snapshot parts): a quarter of MaxMessageBytes, so protobuf framing and a
// part's header never push a part over the limit, and small enough that an
// edge holds at most one part beside the index it builds.
const MaxPartBytes = 1 << 20

// DialOptions are the message limits of every role-to-role client
// connection; pkg/role adds them to each connection it makes.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes))}
}

// ServerOptions are what every role-to-role server has, the in-process one
// and the one serving other processes: the message limits, and as the
// outermost interceptors the recovery of a handler's panic (the call
// answers codes.Internal, log gets the panic and its stack, meter's
// telemetry.MetricRPCHandlerPanics counts it, the process keeps serving).
// log and meter may be nil (discarded).
func ServerOptions(log *slog.Logger, meter metric.Meter) []grpc.ServerOption {
	rec := newRecovery(log, meter)
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.ChainUnaryInterceptor(rec.unary), grpc.ChainStreamInterceptor(rec.stream),
	}
}
