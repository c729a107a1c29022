package telemetry

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestPanicReport: Report logs a recovered panic at error level with its
// task, value, stack and the caller's attributes, and counts it by task;
// Count only counts (the panic was logged where it was recovered); a nil
// report does nothing.
func TestPanicReport(t *testing.T) {
	var logs bytes.Buffer
	reader := sdkmetric.NewManualReader()
	r, err := NewPanicReport(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test"), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r.Report(TaskTicketFetch, "index out of range [3]", []byte("goroutine 9 [running]:"), AttrUPN, "mallory@lab.test")
	r.Count(TaskTGTRefresh)
	var none *PanicReport
	none.Report(TaskCRLFetch, "x", nil)
	none.Count(TaskCRLFetch)

	for _, want := range []string{"level=ERROR", "task=ticket_fetch", "upn=mallory@lab.test", `panic="index out of range [3]"`, `stack="goroutine 9 [running]:"`} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log lacks %s:\n%s", want, logs.String())
		}
	}
	if strings.Count(logs.String(), "\n") != 1 {
		t.Fatalf("want one log line (Count does not log):\n%s", logs.String())
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == MetricBackgroundPanics {
				for _, p := range s.DataPoints {
					v, _ := p.Attributes.Value(AttrTask)
					got[v.AsString()] += p.Value
				}
			}
		}
	}
	if len(got) != 2 || got[TaskTicketFetch] != 1 || got[TaskTGTRefresh] != 1 {
		t.Fatalf("%s by task: %v, want ticket_fetch 1 and tgt_refresh 1", MetricBackgroundPanics, got)
	}
}
