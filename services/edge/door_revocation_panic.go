package edge

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/segmesh/segmesh/pkg/telemetry"
	crlv1 "github.com/segmesh/segmesh/proto/segmesh/crl/v1"
)

// errStreamPanic is a revocation stream ended because the edge's own code
// panicked on what the crl role sent.
var errStreamPanic = errors.New("the edge panicked on the crl role's snapshot stream (logged at error level with its stack); the snapshot being received was not put in force")

// streamPanics are the panics of the revocation stream's goroutine: the
// edge decodes the crl role's snapshots there (parts, packed serials, the
// issuers' indexes) where no handler's recovery would see a panic, which
// ended the edge process (TestAttackPanicInTheRevocationStream).
type streamPanics struct {
	// report logs and counts each panic (segmesh_background_panics,
	// task revocation_stream); nil: neither.
	report *telemetry.PanicReport
	count  atomic.Int64
	// last is when the last one happened (unix nanoseconds).
	last atomic.Int64
	// pending reports a panic since the last snapshot put in force: the
	// crl role's newer snapshot, if any, is not in force here, and a
	// reconnected stream does not count as a working one until a snapshot
	// is applied again; it asks for the current one (stream), so an edge
	// that was up to date is cleared by the same version coming again.
	pending atomic.Bool
}

// guardedStream runs stream, turning a panic in it into a broken stream
// that fails closed: whatever was being received is dropped, the last
// snapshot put in force stays (none: every certificate is refused, as
// before the first), the stream's call ends (stream's deferred cancel) and
// watch opens it again after its backoff, which grows while panics go on.
// The panic is logged at error level with its stack and counted, and shows
// on /status and /readyz (notes) until a snapshot is put in force again;
// a stream that keeps panicking for longer than the refresh interval makes
// the edge not ready (unready's stream_broken).
func (r *revocation) guardedStream(ctx context.Context, client crlv1.RevocationServiceClient) (got bool, err error) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		r.panics.count.Add(1)
		r.panics.last.Store(r.now().UnixNano())
		r.panics.pending.Store(true)
		r.panics.report.Report(telemetry.TaskRevocationStream, v, debug.Stack(), "snapshot_version", r.wire.Load())
		got, err = false, errStreamPanic
	}()
	return r.stream(ctx, client)
}

// applied records that a snapshot was put in force: a panic before it no
// longer holds the stream for broken.
func (p *streamPanics) applied(r *revocation) {
	if p.pending.Swap(false) {
		r.brokenSince.Store(0)
	}
}

// describe says what a pending panic means, for readiness and the notes;
// "" when none is pending.
func (p *streamPanics) describe(wire uint64) string {
	if !p.pending.Load() {
		return ""
	}
	held := fmt.Sprintf("no snapshot after version %d is in force here and the last one put in force still decides", wire)
	if wire == 0 {
		held = "no snapshot is in force here yet, so every client certificate is refused"
	}
	return fmt.Sprintf("the crl role's snapshot stream made the edge panic (%d times since start, last at %s; see the error log line with task=revocation_stream and its stack): %s; the stream is opened again",
		p.count.Load(), time.Unix(0, p.last.Load()).UTC().Format(time.RFC3339), held)
}
