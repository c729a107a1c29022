package edge

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/segmesh/segmesh/pkg/telemetry"
)

// TestUpstreamDuration: every request but a Ping records Exchange's time to
// answer in segmesh_edge_upstream_seconds; a Ping proxied over HTTP/2 (it
// waits for mail, not for Exchange) records nothing.
func TestUpstreamDuration(t *testing.T) {
	const delay = 30 * time.Millisecond
	for _, tc := range []struct {
		name      string
		path      string
		wantCount uint64
	}{
		{"Sync", syncPath, 1},
		{"Ping over HTTP/2", pingPath, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil, options{})
			reader := recordMetrics(t, h)
			h.exchange.handler = func(w http.ResponseWriter, r *http.Request, _ string) {
				if !strings.Contains(r.URL.RawQuery, "Cmd=Ping") {
					time.Sleep(delay)
				}
				_, _ = w.Write([]byte("ok"))
			}
			cert := h.ca.issue(t, certOpts{cn: "alice"})
			if resp, body := get(t, h.client(&cert, true), h.url(tc.path), nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: HTTP %d %s", tc.name, resp.StatusCode, body)
			}
			count, sum := collectHistogram(t, reader, telemetry.MetricEdgeUpstreamDuration)
			if count != tc.wantCount {
				t.Fatalf("%d upstream durations recorded, want %d", count, tc.wantCount)
			}
			if count > 0 && sum < delay.Seconds() {
				t.Errorf("upstream duration %.3f s, want at least Exchange's %s", sum, delay)
			}
		})
	}
}

// collectHistogram returns the count and sum of the float histogram name
// over all its points.
func collectHistogram(t testing.TB, reader *sdkmetric.ManualReader, name string) (uint64, float64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var count uint64
	var sum float64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, dp := range h.DataPoints {
					count += dp.Count
					sum += dp.Sum
				}
			}
		}
	}
	return count, sum
}
