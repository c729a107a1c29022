package crl

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

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
	f, s, reader, dir := newSavingService(t)
	url := attribute.String(telemetry.AttrURL, f.cdp.url())
	gauge := func(step string, want float64) {
		t.Helper()
		got, n := points(t, reader, telemetry.MetricCRLUnsaved, url)
		if got != want || n != 1 {
			t.Errorf("%s: %s = %v (%d points); want %v", step, telemetry.MetricCRLUnsaved, got, n, want)
		}
	}
	gauge("after a good start", 0)

	fix := blockStateDir(t, dir)
	f.cdp.serve(f.crl(t, 2, 5, 6))
	s.refresher.RefreshNow(context.Background())
	gauge("CRL 2 not written", 1)
	s.refresher.RefreshNow(context.Background())
	s.refresher.RefreshNow(context.Background())
	gauge("CRL 2 not written, two refreshes later", 1)

	fix()
	s.refresher.RefreshNow(context.Background())
	gauge("directory fixed, refreshed", 0)
}

// newSavingService starts a metered crl role with a state directory, dir,
// whose distribution point serves CRL 1 (serial 5).
func newSavingService(t *testing.T) (f *fixture, s *Service, reader *sdkmetric.ManualReader, dir string) {
	t.Helper()
	f = newFixture(t)
	f.cdp.serve(f.crl(t, 1, 5))
	cfg := f.config(t)
	cfg.StateDir = filepath.Join(t.TempDir(), "state")
	s, reader = f.meteredService(t, cfg)
	return f, s, reader, cfg.StateDir
}

// blockStateDir makes every write to the state directory dir fail (a
// file where the directory goes: the tests run as root, which a read-only
// directory does not stop); fix undoes it.
func blockStateDir(t *testing.T, dir string) (fix func()) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
	}
}
