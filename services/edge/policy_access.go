package edge

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/segmesh/segmesh/pkg/telemetry"
)

// The access-line rule of the request policy (policy.go): every request,
// proxied or parked, ends in finish, which writes one log line, the
// request metrics and the span.

// finish writes the access-log line, the metrics and the span of a request.
// The line never holds Authorization or any token.
func (s *Service) finish(ctx context.Context, span trace.Span, rec *recorder, r *http.Request, state *requestState, start time.Time) {
	if state.parked {
		return
	}
	end := s.now()
	d := end.Sub(start)
	status := rec.status
	switch {
	case state.failure != nil && (status == 0 || state.failure.Status == 499):
		status = state.failure.Status
	case status == 0 && r.Context().Err() != nil:
		status = 499
	case status == 0:
		status = http.StatusOK
	}
	s.metrics.request(ctx, status, d)
	// Attributes only for a sampled span: building them costs an
	// allocation per request that an unsampled one throws away.
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("http.response.status_code", status), attribute.String(telemetry.AttrUPN, state.upn),
			attribute.String(telemetry.AttrDeviceID, state.eas.DeviceID), attribute.String(telemetry.AttrCmd, state.eas.Cmd))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
	level := slog.LevelInfo
	if state.failure != nil && state.failure.Status != http.StatusNotFound {
		level = slog.LevelWarn
		if state.failure.Status != 499 {
			s.refusals.add(refusalRecord{Time: end, Reason: state.failure.Reason, UPN: state.upn, Status: strconv.Itoa(status)})
		}
	}
	h := s.log.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	// The record is built here rather than with Logger.LogAttrs, which
	// looks up its caller (runtime.Callers) for every line although no
	// handler prints the source: about a quarter of the line's cost.
	line := slog.NewRecord(end, level, "request", 0)
	line.AddAttrs(
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int(telemetry.AttrStatus, status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", d),
		slog.String(telemetry.AttrUPN, state.upn),
		slog.String(telemetry.AttrDeviceID, state.eas.DeviceID),
		slog.String("device_type", state.eas.DeviceType),
		slog.String(telemetry.AttrCmd, state.eas.Cmd),
		slog.Bool("ticket_cache_hit", state.ticketHit),
		slog.String("remote", r.RemoteAddr),
	)
	if state.retried {
		line.AddAttrs(slog.Bool("retried_401", true))
	}
	if state.failure != nil {
		line.AddAttrs(slog.Any("failure", state.failure))
	}
	_ = h.Handle(ctx, line)
}

// recorder notes the status and size of the response for the access log.
// It keeps http.ResponseController working through Unwrap.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

// WriteHeader notes a final status; an informational answer (the reverse
// proxy's and the relay's) first passes the inbound header rule
// (informationalHeader).
func (w *recorder) WriteHeader(code int) {
	if code >= 200 {
		if w.status == 0 {
			w.status = code
		}
	} else {
		informationalHeader(w.ResponseWriter.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush flushes the underlying writer. The proxy flushes after every write
// of a streamed response, so the common case avoids building a
// ResponseController.
func (w *recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
		return
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// detach drops the underlying writer: a parked Ping writes its answer
// itself, and through the writer the server's connection and its buffers
// would stay reachable for the whole hold.
func (w *recorder) detach() { w.ResponseWriter = nil }

// record notes an answer written without the recorder (a parked Ping's).
func (w *recorder) record(status int, bytes int64) { w.status, w.bytes = status, bytes }

// Unwrap returns the underlying writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
