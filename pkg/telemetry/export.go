package telemetry

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TraceExport is the state of the trace export, for /status.json (traces).
type TraceExport struct {
	// Endpoint is segmesh.telemetry.otlpEndpoint; empty: no export.
	Endpoint string `json:"endpoint"`
	// Failures counts the failed exports (MetricTraceExportFailures).
	Failures int64 `json:"failures"`
	// FailuresSinceSuccess counts the failed exports since the last that
	// succeeded (since the start when none has); zero when the last
	// succeeded.
	FailuresSinceSuccess int64 `json:"failures_since_success"`
	// LastError is the last failed export's error, on one line and cut to
	// MaxPanicValue bytes; empty when none failed or an export succeeded
	// since.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when it failed, in UTC; zero with no LastError.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// LastSuccessAt is when an export last succeeded, in UTC; zero: never.
	LastSuccessAt time.Time `json:"last_success_at,omitzero"`
}

// exportWatch is the trace exporter with its failures counted
// (MetricTraceExportFailures) and the last one kept until an export
// succeeds: an exporter that cannot reach its collector otherwise says so
// only in OpenTelemetry's own log.
type exportWatch struct {
	sdktrace.SpanExporter
	failures metric.Int64Counter
	now      func() time.Time

	mu    sync.Mutex
	state TraceExport
}

// ExportSpans exports spans and records the outcome.
func (w *exportWatch) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := w.SpanExporter.ExportSpans(ctx, spans)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.failures.Add(context.WithoutCancel(ctx), 1)
		w.state.Failures++
		w.state.FailuresSinceSuccess++
		w.state.LastError, w.state.LastErrorAt = exportErrorText(err), w.now().UTC()
		return err
	}
	w.state.FailuresSinceSuccess = 0
	w.state.LastError, w.state.LastErrorAt, w.state.LastSuccessAt = "", time.Time{}, w.now().UTC()
	return nil
}

// exportErrorText is a failed export's error as /readyz and /status.json
// show it: on one line and cut as a panic value is (cutText). Its text is
// largely the collector's (a gRPC status message, a partial success's
// error message), or that of whoever answers in its place.
func exportErrorText(err error) string {
	return cutText(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, err.Error()))
}

// TraceExport returns the trace export's state; Endpoint is empty when
// nothing is exported.
func (p *Providers) TraceExport() TraceExport {
	if p.export == nil {
		return TraceExport{}
	}
	p.export.mu.Lock()
	defer p.export.mu.Unlock()
	return p.export.state
}

// Notes returns what /readyz notes of the providers: the trace export's
// last failure while no export has succeeded since, with its time (UTC,
// RFC 3339) and the failures since the last success, so that a quiet
// process's old failure reads as old. It does not make the process
// unready: traces are lost, requests are served.
func (p *Providers) Notes() []string {
	s := p.TraceExport()
	if s.LastError == "" {
		return nil
	}
	return []string{fmt.Sprintf("traces are not reaching %s %s (%d failed exports since the last success, the last at %s; %d in all, %s): %s",
		KeyOTLPEndpoint, s.Endpoint, s.FailuresSinceSuccess, s.LastErrorAt.Format(time.RFC3339), s.Failures, MetricTraceExportFailures+"_total", s.LastError)}
}
