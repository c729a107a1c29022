package telemetry

import (
	"context"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
)

// The tasks of MetricBackgroundPanics (its AttrTask values).
const (
	TaskTicketFetch      = "ticket_fetch"       // services/ticket: the shared KDC exchange of a cache miss or refresh
	TaskDirectoryLookup  = "directory_lookup"   // pkg/certmap: the shared directory lookup of a cache miss
	TaskEdgeIdentityCall = "edge_identity_call" // services/edge: the shared call to the identity role
	TaskEdgeTicketCall   = "edge_ticket_call"   // services/edge: the shared call to the ticket role, a background refresh included
	TaskTGTRefresh       = "tgt_refresh"        // pkg/s4u: the service account's TGT refresh
	TaskCRLFetch         = "crl_fetch"          // pkg/crl/refresh: one distribution point's fetch and check
	TaskRevocationStream = "revocation_stream"  // services/edge: the crl role's snapshot stream, decoded into the edge's indexes
)

// PanicReport logs and counts the panics recovered in a role's own
// goroutines (MetricBackgroundPanics): where no request handler's recovery
// would see them, and where nobody may be waiting to be told (a background
// refresh, a shared call whose callers all left). Its lines go through a
// PanicLog: the value bounded, the stacks rate-limited. The zero value and
// nil report nothing.
type PanicReport struct {
	lines *PanicLog
	count metric.Int64Counter
}

// NewPanicReport creates the counter on meter (nil: not counted) and
// reports to log (nil: not logged) through a PanicLog of its own.
func NewPanicReport(meter metric.Meter, log *slog.Logger) (*PanicReport, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return NewPanicReportTo(meter, NewPanicLog(log, nil))
}

// NewPanicReportTo is NewPanicReport writing through lines, which the
// role's other panic sites may share (one rate for all of them).
func NewPanicReportTo(meter metric.Meter, lines *PanicLog) (*PanicReport, error) {
	if meter == nil {
		meter = metricnoop.NewMeterProvider().Meter("segmesh")
	}
	c, err := meter.Int64Counter(MetricBackgroundPanics,
		metric.WithDescription("Panics recovered in a role's own goroutines (shared calls, background refreshes, CRL fetches), by task: each logged at error level with its stack, the role kept serving."))
	if err != nil {
		return nil, fmt.Errorf("telemetry: create %s: %w", MetricBackgroundPanics, err)
	}
	return &PanicReport{lines: lines, count: c}, nil
}

// Report logs a panic of task at error level with its value and stack
// (attrs add the task's own facts, such as the realm or the URL), unless
// the PanicLog's rate is spent, and counts it.
func (r *PanicReport) Report(task string, value any, stack []byte, attrs ...any) {
	if r == nil || r.count == nil {
		return
	}
	// Rated per task: one task's panics do not hide another's.
	r.lines.logKind("task "+task, "a role's background work panicked; it was recovered and counts as a failure of that work, the role keeps serving",
		value, stack, append([]any{AttrTask, task}, attrs...)...)
	r.Count(task)
}

// Count counts a panic of task that was logged already.
func (r *PanicReport) Count(task string) {
	if r == nil || r.count == nil {
		return
	}
	r.count.Add(context.Background(), 1, metric.WithAttributes(attribute.String(AttrTask, task)))
}
