package crl

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/segmesh/segmesh/pkg/telemetry"
)

// TestAttackEmptyStateDirOnEveryChannel: a start on a state directory
// without any CRL (segmesh.crl.stateDir changed while down without its
// contents, or the directory lost) has no floor of the earlier run in
// force: a distribution point that lags, or a replayed older CRL, makes a
// revoked serial good until a newer CRL arrives. icrl4 logs it and shows
// it on /status only; an unsafe state must also be on a metric, where a
// dashboard or an alert sees it after a move (this test did not build on
// main: no such metric). The next start, on the directory the first one
// filled, shows 0. (No /readyz note: see warnEmptyStateDir.)
func TestAttackEmptyStateDirOnEveryChannel(t *testing.T) {
	f := newFixture(t)
	f.cdp.serve(f.crl(t, 1, 5))
	cfg := f.config(t)
	cfg.StateDir = filepath.Join(t.TempDir(), "moved")
	for i, want := range []bool{true, false} {
		s, reader := f.meteredService(t, cfg)
		got, n := points(t, reader, telemetry.MetricCRLStateDirEmptyAtStart)
		if n != 1 || (got == 1) != want {
			t.Errorf("start %d: %s = %v (%d points); want 1: %v", i+1, telemetry.MetricCRLStateDirEmptyAtStart, got, n, want)
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
