package rpc

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/internal/testlog"
	"github.com/segmesh/segmesh/internal/testmetric"
	"github.com/segmesh/segmesh/pkg/flight"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// TestRecoveryCountsEveryPanicAndRateLimitsStacks: a caller that can make a
// role's handler panic at will (a device, through the edge, on the ticket
// role's parser) got one stack per call into the log. Every panic is
// still answered Internal and counted, but only the first
// telemetry.PanicBurst per minute carry their stack, with the value cut to
// telemetry.MaxPanicValue bytes; the next line says how many were left
// out. A shared call's panic raised in the handler that waited for it was
// counted by the call's group already: one line naming the call, no second
// count (one panic, one alert).
func TestRecoveryCountsEveryPanicAndRateLimitsStacks(t *testing.T) {
	logs := &testlog.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	reader := sdkmetric.NewManualReader()
	r := newRecovery(log, sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test"))
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	r.lines = telemetry.NewPanicLog(log, func() time.Time { return now })
	const method = "/segmesh.ticket.v1.TicketService/GetServiceTicket"
	call := func(v any) {
		t.Helper()
		_, err := r.unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: method},
			func(context.Context, any) (any, error) { panic(v) })
		if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "unexpected") {
			t.Fatalf("answer %v, want Internal without the panic value", err)
		}
	}
	const n = telemetry.PanicBurst + 3
	for range n {
		call("unexpected reply " + strings.Repeat("B", 64<<10))
	}
	counted := func() int64 {
		return testmetric.Sum(t, reader, telemetry.MetricRPCHandlerPanics, attribute.String("method", method))
	}
	if got := counted(); got != n {
		t.Fatalf("%s = %d, want %d: every panic counts", telemetry.MetricRPCHandlerPanics, got, n)
	}
	out := logs.String()
	if got := strings.Count(out, "stack="); got != telemetry.PanicBurst {
		t.Fatalf("%d stacks for %d panics within a minute, want %d", got, n, telemetry.PanicBurst)
	}
	if len(out) > telemetry.PanicBurst*(telemetry.MaxPanicValue+16<<10) || !strings.Contains(out, "bytes in all, cut") {
		t.Fatalf("%d bytes of log for %d panics: the value is not bounded", len(out), telemetry.PanicBurst)
	}

	now = now.Add(telemetry.PanicInterval)
	before := len(out)
	call(&flight.Panic{Call: "ticket: the KDC exchange", Value: "unexpected KDC reply", Stack: []byte("goroutine 7")})
	if got := counted(); got != n {
		t.Fatalf("a shared call's panic counted again as a handler panic: %d, want %d", got, n)
	}
	last := logs.String()[before:]
	if !strings.Contains(last, "suppressed=3") || !strings.Contains(last, "ticket: the KDC exchange") || strings.Contains(last, "stack=") {
		t.Fatalf("a minute later, the shared call's panic: %q, want the suppressed count and one line naming the call without a stack", last)
	}
}
