package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// outcomeExporter is a span exporter whose next export returns err.
type outcomeExporter struct{ err error }

func (e *outcomeExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return e.err }
func (e *outcomeExporter) Shutdown(context.Context) error                             { return nil }

// TestTraceExportNoteIsDated (iotlp): the /readyz note of a failing trace
// export stayed, undated, until the next export succeeded, so a quiet
// process showed an old failure as if it were current. The note and
// /status.json's traces section now carry the last failure's time (UTC,
// RFC 3339, from the injected clock whatever its zone) and the failures
// since the last success, which a success resets.
func TestTraceExportNoteIsDated(t *testing.T) {
	zone := time.FixedZone("CET", 3600)
	t0 := time.Date(2026, 12, 6, 8, 0, 0, 0, zone) // 07:00:00Z
	for _, tc := range []struct {
		name     string
		outcomes []error // nil: the export succeeds
		since    int64
		total    int64
		at       string // "" no note
	}{
		{"none yet", nil, 0, 0, ""},
		{"one failure", []error{errors.New("refused")}, 1, 1, "2026-12-06T07:00:01Z"},
		{"three failures", []error{errors.New("a"), errors.New("b"), errors.New("refused")}, 3, 3, "2026-12-06T07:00:03Z"},
		{"failure then success", []error{errors.New("a"), nil}, 0, 1, ""},
		{"failures after a success", []error{errors.New("a"), errors.New("b"), nil, errors.New("refused")}, 1, 3, "2026-12-06T07:00:04Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := t0
			fake := &outcomeExporter{}
			counter, err := noop.NewMeterProvider().Meter("test").Int64Counter(MetricTraceExportFailures)
			if err != nil {
				t.Fatal(err)
			}
			w := &exportWatch{SpanExporter: fake, failures: counter, now: func() time.Time { return now }, state: TraceExport{Endpoint: "collector:4317"}}
			p := &Providers{export: w}
			for _, out := range tc.outcomes {
				now = now.Add(time.Second)
				fake.err = out
				_ = w.ExportSpans(context.Background(), nil)
			}
			st, notes := p.TraceExport(), p.Notes()
			if st.FailuresSinceSuccess != tc.since || st.Failures != tc.total {
				t.Errorf("status %+v: want %d failures since the last success, %d in all", st, tc.since, tc.total)
			}
			if tc.at == "" {
				if notes != nil || !st.LastErrorAt.IsZero() {
					t.Fatalf("notes %q, last error at %v; want none", notes, st.LastErrorAt)
				}
				return
			}
			if got := st.LastErrorAt.Format(time.RFC3339); got != tc.at || st.LastErrorAt.Location() != time.UTC {
				t.Errorf("LastErrorAt = %v; want %s in UTC", st.LastErrorAt, tc.at)
			}
			if len(notes) != 1 {
				t.Fatalf("notes %q; want one", notes)
			}
			for _, w := range []string{tc.at, "refused", "collector:4317",
				fmt.Sprintf("%d failed exports since the last success", tc.since), fmt.Sprintf("%d in all", tc.total)} {
				if !strings.Contains(notes[0], w) {
					t.Errorf("note %q does not say %q", notes[0], w)
				}
			}
		})
	}
}
