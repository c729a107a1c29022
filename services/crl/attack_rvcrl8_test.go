package crl

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/otel/attribute"

	"github.com/segmesh/segmesh/pkg/telemetry"
)

// TestAttackUnsavedStateOnAMetric: a CRL in force that could not be
// written to the state directory is an unsafe state (a restart may lack
// it), shown on /readyz and /status for as long as it lasts, but on the
// metrics only by segmesh_crl_save_failures_total, which counts failed
// writes: it went flat while the state lasted (nothing wrote again until a
// newer CRL came), so an alert on it went quiet with the CRL still in
// memory only. segmesh_crl_unsaved is 1 for that CRL while it lasts, also
// across refreshes that bring nothing new, and 0 once it is written.
func TestAttackUnsavedStateOnAMetric(t *testing.T) {
	f := newFixture(t)
	f.cdp.serve(f.crl(t, 1, 5))
	cfg := f.config(t)
	cfg.StateDir = filepath.Join(t.TempDir(), "state")
	s, reader := f.meteredService(t, cfg)
	url := attribute.String(telemetry.AttrURL, f.cdp.url())
	gauge := func(step string, want float64) {
		t.Helper()
		got, n := points(t, reader, telemetry.MetricCRLUnsaved, url)
		if got != want || n != 1 {
			t.Errorf("%s: %s = %v (%d points); want %v", step, telemetry.MetricCRLUnsaved, got, n, want)
		}
	}
	gauge("after a good start", 0)

	if err := os.RemoveAll(cfg.StateDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.StateDir, nil, 0o644); err != nil { // a file where the directory goes
		t.Fatal(err)
	}
	f.cdp.serve(f.crl(t, 2, 5, 6))
	s.refresher.RefreshNow(context.Background())
	gauge("CRL 2 not written", 1)
	s.refresher.RefreshNow(context.Background())
	s.refresher.RefreshNow(context.Background())
	gauge("CRL 2 not written, two refreshes later", 1)

	if err := os.Remove(cfg.StateDir); err != nil {
		t.Fatal(err)
	}
	s.refresher.RefreshNow(context.Background())
	gauge("directory fixed, refreshed", 0)
}
