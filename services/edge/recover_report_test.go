package edge

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/segmesh/segmesh/internal/testmetric"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/flight"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// meteredEdge builds an edge from c and o, not started, that logs to the
// buffer and meters to the reader it returns.
func meteredEdge(t testing.TB, c *config.Config, o options) (*Service, *syncBuffer, *sdkmetric.ManualReader) {
	t.Helper()
	logs := &syncBuffer{}
	reader := sdkmetric.NewManualReader()
	s, err := newService(role.Deps{Config: c, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Meter: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("segmesh/edge")}, o)
	if err != nil {
		t.Fatal(err)
	}
	return s, logs, reader
}

// TestReportPanicBoundedAndRateLimited: the edge's one panic report
// (panicRecovery, recoverRun, recoverHandshake) counts every panic, but a
// device that can trigger one at will does not get one stack per request
// into the log: the first telemetry.PanicBurst per minute (on the edge's
// clock) carry their stack, the others are counted only, and the first
// line after them says how many were left out. The value is cut to
// telemetry.MaxPanicValue bytes. A shared call's panic raised in the
// request that waited for it is not counted again (its group counted it):
// one panic, one alert.
func TestReportPanicBoundedAndRateLimited(t *testing.T) {
	c := config.Default()
	c.Segmesh.Edge.ExchangeURLs = []string{"https://exchange.lab.test"}
	clk := &testClock{t: time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)}
	s, logs, reader := meteredEdge(t, &c, options{now: clk.Now})
	huge := "unexpected bytes " + strings.Repeat("A", 64<<10)
	const n = telemetry.PanicBurst + 3
	for range n {
		s.reportPanic(context.Background(), "a device request caused a panic in the edge's handler", huge, "path", "/Microsoft-Server-ActiveSync")
	}
	if got := testmetric.Sum(t, reader, telemetry.MetricEdgeHandlerPanics); got != n {
		t.Fatalf("%s = %d, want %d: every panic counts", telemetry.MetricEdgeHandlerPanics, got, n)
	}
	log := logs.String()
	if got := strings.Count(log, "stack="); got != telemetry.PanicBurst {
		t.Fatalf("%d stacks logged for %d panics within a minute, want %d:\n%.2000s", got, n, telemetry.PanicBurst, log)
	}
	for line := range strings.Lines(log) {
		if len(line) > telemetry.MaxPanicValue+8<<10 {
			t.Fatalf("a log line of %d bytes: the panic value is not bounded", len(line))
		}
	}
	if !strings.Contains(log, "bytes in all, cut") {
		t.Fatalf("the cut value does not say so:\n%.2000s", log)
	}

	clk.Add(telemetry.PanicInterval)
	s.reportPanic(context.Background(), "a parked Ping caused a panic in the edge", "nil map", telemetry.AttrUPN, "mallory@lab.test")
	log = logs.String()
	if !strings.Contains(log, "suppressed=3") || strings.Count(log, "stack=") != telemetry.PanicBurst+1 {
		t.Fatalf("a minute later: want the suppressed count and a stack again:\n%.3000s", log[len(log)-min(len(log), 3000):])
	}

	// A shared call's panic raised in the waiting request: its group
	// logged and counted it already.
	before := testmetric.Sum(t, reader, telemetry.MetricEdgeHandlerPanics)
	s.reportPanic(context.Background(), "a device request caused a panic in the edge's handler",
		&flight.Panic{Call: "edge: the identity role call", Value: "unexpected identity answer", Stack: []byte("goroutine 7")})
	if got := testmetric.Sum(t, reader, telemetry.MetricEdgeHandlerPanics); got != before {
		t.Fatalf("a shared call's panic counted again as a handler panic: %d, want %d", got, before)
	}
	last := logs.String()[len(log):]
	if !strings.Contains(last, "shared role call") || !strings.Contains(last, "edge: the identity role call") || strings.Contains(last, "stack=") {
		t.Fatalf("the shared call's panic in the request: %q, want one line naming the call, without a stack", last)
	}
}
