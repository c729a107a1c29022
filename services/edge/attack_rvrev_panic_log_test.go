package edge

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc"

	"github.com/segmesh/segmesh/internal/testmetric"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/telemetry"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// TestAttackPanicFloodHidesAnotherFailure: the edge writes every panic's
// line through one PanicLog, whose rate (telemetry.PanicBurst stacks per
// telemetry.PanicInterval) was shared by every site. A device that can
// make the handler panic at will spends the rate, and the first panic of
// another kind in that minute got no line at all: the revocation stream's
// panic, whose /readyz note sends the admin to "the error log line with
// task=revocation_stream and its stack", a handshake's, or a shared role
// call's (its only line with a stack: the request that waited logs none).
// Each was counted, but the log, where the stack is, hid the first
// occurrence of a distinct failure behind the flood. Each kind of panic
// now has its own rate: the flood keeps PanicBurst stacks, and the first
// panic of each other kind in the same minute is logged with its stack.
func TestAttackPanicFloodHidesAnotherFailure(t *testing.T) {
	tests := []struct {
		name string
		// panic makes the edge s recover a panic of another kind than the
		// flood's, whose value is "the other failure".
		panic func(t *testing.T, s *Service, reader *sdkmetric.ManualReader)
		// want is in the panic's line.
		want string
	}{
		{"the revocation stream's panic", func(t *testing.T, s *Service, reader *sdkmetric.ManualReader) {
			fake := newFakeCRL()
			client := &panickingCRLClient{RevocationServiceClient: crlv1.NewRevocationServiceClient(
				serveGRPC(t, func(g *grpc.Server) { crlv1.RegisterRevocationServiceServer(g, fake) }))}
			client.panics.Store(1)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { cancel(); wg.Wait() }()
			wg.Go(func() { s.revocation.watch(ctx, client) })
			waitFor(t, "the stream's panic counted", func() bool {
				return collectInts(t, reader)["segmesh_background_panics/revocation_stream"] == 1
			})
		}, "task=" + telemetry.TaskRevocationStream},
		{"a TLS handshake's panic", func(t *testing.T, s *Service, _ *sdkmetric.ManualReader) {
			err := func() (err error) {
				defer s.recoverHandshake("VerifyConnection", &err)
				panic("the other failure")
			}()
			if err == nil {
				t.Fatal("the handshake's panic was not turned into a refusal")
			}
		}, "TLS handshake caused a panic"},
		{"a shared role call's panic", func(t *testing.T, s *Service, _ *sdkmetric.ManualReader) {
			s.panicReport.Report(telemetry.TaskEdgeTicketCall, "the other failure", []byte("goroutine 7 [running]:"))
		}, "task=" + telemetry.TaskEdgeTicketCall},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			c.Gateway.RevocationEnabled = true
			c.Segmesh.Edge.ExchangeURLs = []string{"https://exchange.lab.test"}
			logs := &syncBuffer{}
			reader := sdkmetric.NewManualReader()
			clk := &testClock{t: time.Date(2026, 12, 6, 3, 30, 0, 0, time.UTC)}
			s, err := newService(role.Deps{Config: &c, Logger: slog.New(slog.NewTextHandler(logs, nil)),
				Meter: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("segmesh/edge")},
				options{now: clk.Now, crlBackoff: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			// The flood: a device makes the handler panic, more often
			// than the rate logs.
			const flood = 3 * telemetry.PanicBurst
			for range flood {
				s.reportPanic(context.Background(), "a device request caused a panic in the edge's handler; its connection was closed and the edge keeps serving",
					"device-triggered", "path", "/Microsoft-Server-ActiveSync")
			}
			if got := testmetric.Sum(t, reader, telemetry.MetricEdgeHandlerPanics); got != flood {
				t.Fatalf("%s = %d, want %d", telemetry.MetricEdgeHandlerPanics, got, flood)
			}
			before := logs.String()
			if got := strings.Count(before, "stack="); got != telemetry.PanicBurst {
				t.Fatalf("the flood logged %d stacks, want %d (the rate)", got, telemetry.PanicBurst)
			}

			tc.panic(t, s, reader)
			after := logs.String()[len(before):]
			var line string
			for l := range strings.Lines(after) {
				if strings.Contains(l, tc.want) {
					line = l
				}
			}
			if line == "" {
				t.Fatalf("the first panic of another kind in the flood's minute has no log line (want one with %q): the flood hid it; logged after the flood:\n%s", tc.want, after)
			}
			if !strings.Contains(line, "stack=") || !strings.Contains(line, "level=ERROR") {
				t.Fatalf("its line has no stack, or is not at error level: %s", line)
			}
			// The flood itself stays within the rate.
			for range flood {
				s.reportPanic(context.Background(), "a device request caused a panic in the edge's handler; its connection was closed and the edge keeps serving",
					"device-triggered", "path", "/Microsoft-Server-ActiveSync")
			}
			if got := strings.Count(logs.String(), "device-triggered"); got != telemetry.PanicBurst {
				t.Fatalf("the flood's panics logged %d times in a minute, want %d", got, telemetry.PanicBurst)
			}
		})
	}
}
