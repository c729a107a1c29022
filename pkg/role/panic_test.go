package role

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/segmesh/segmesh/internal/testlog"
	"github.com/segmesh/segmesh/internal/testmetric"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// panicValue is what the handlers panic with: it must reach the log, never
// the caller.
const panicValue = "panic value with a user's data: alice@lab.test"

const (
	panickyUnary  = "/segmesh.test.v1.Panicky/Boom"
	panickyStream = "/segmesh.test.v1.Panicky/BoomStream"
)

// panicRole is a ticket role whose gRPC API panics in every handler, as a
// parser of a KDC's bytes would on a reply it did not expect.
type panicRole struct{ fakeRole }

func (p *panicRole) RegisterGRPC(s grpc.ServiceRegistrar) {
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "segmesh.test.v1.Panicky",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Boom",
			Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
				in := new(emptypb.Empty)
				if err := dec(in); err != nil {
					return nil, err
				}
				h := func(context.Context, any) (any, error) { panic(panicValue) }
				if ic == nil {
					return h(ctx, in)
				}
				return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: panickyUnary}, h)
			},
		}},
		Streams: []grpc.StreamDesc{{
			StreamName:    "BoomStream",
			ServerStreams: true,
			Handler:       func(any, grpc.ServerStream) error { panic(panicValue) },
		}},
	}, p)
}

// lockedBuffer is a log destination safe for the server's goroutines.
type lockedBuffer = testlog.Buffer

// TestGroupSurvivesAPanickingHandler: a role's handler that panics (unary
// or stream) answers codes.Internal without the panic value, the stack goes
// to the log, the panic is counted, and the process serves the next call.
// Without recovery, grpc-go lets the panic end the process.
func TestGroupSurvivesAPanickingHandler(t *testing.T) {
	j := &journal{}
	cs := ctors(j, "", nil)
	cs[Ticket] = func(Deps) (Role, error) { return &panicRole{fakeRole{name: Ticket, journal: j}}, nil }
	logs := &lockedBuffer{}
	reader := sdkmetric.NewManualReader()
	g, err := NewGroup(GroupOptions{
		Config: testConfig(), Constructors: cs, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Stop(ctx) })
	conn, err := g.Conn(Ticket)
	if err != nil {
		t.Fatal(err)
	}
	callStream := func() error {
		s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, panickyStream)
		if err != nil {
			return err
		}
		if err := s.SendMsg(&emptypb.Empty{}); err != nil {
			return err
		}
		if err := s.CloseSend(); err != nil {
			return err
		}
		return s.RecvMsg(&emptypb.Empty{})
	}
	for _, tc := range []struct {
		method string
		call   func() error
	}{
		{panickyUnary, func() error { return conn.Invoke(ctx, panickyUnary, &emptypb.Empty{}, &emptypb.Empty{}) }},
		{panickyStream, callStream},
	} {
		t.Run(tc.method, func(t *testing.T) {
			err := tc.call()
			st, _ := status.FromError(err)
			if st.Code() != codes.Internal || !strings.Contains(st.Message(), "internal error") {
				t.Fatalf("panicking %s answered %v, want codes.Internal saying the request caused an internal error", tc.method, err)
			}
			if strings.Contains(st.Message(), "alice") {
				t.Fatalf("the panic value reached the caller: %q", st.Message())
			}
			// The process still serves.
			resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: Ticket})
			if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("health after the panic = %v, %v", resp, err)
			}
			if n := testmetric.Sum(t, reader, telemetry.MetricRPCHandlerPanics, attribute.String("method", tc.method)); n != 1 {
				t.Fatalf("%s counted %d panics of %s, want 1", telemetry.MetricRPCHandlerPanics, n, tc.method)
			}
			log := logs.String()
			for _, want := range []string{tc.method, panicValue, "goroutine "} {
				if !strings.Contains(log, want) {
					t.Fatalf("log lacks %q:\n%s", want, log)
				}
			}
		})
	}
}
