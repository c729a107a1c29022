package edge

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// TestServerCertExpiryGauge: after Start the edge reports when its server
// certificate ends, the series the "certificate expiring" alert watches.
func TestServerCertExpiryGauge(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "Server CA")
	notAfter := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	srv := ca.issue(t, certOpts{cn: "edge.lab.test", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		dns: []string{"edge.lab.test"}, notAfter: notAfter})
	exchange := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(exchange.Close)
	c := config.Default()
	c.BaseDir = dir
	c.Segmesh.Edge.Listen = "127.0.0.1:0"
	c.Segmesh.Edge.ServerCertFile = writeFile(t, dir, "edge.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate[0]}))
	c.Segmesh.Edge.ServerKeyFile = writeFile(t, dir, "edge.key", keyPEM(t, srv))
	c.Segmesh.Edge.ExchangeURLs = []string{exchange.URL}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	svc, err := newService(role.Deps{Config: &c, Meter: mp.Meter("segmesh/edge")}, options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := collectGauge(t, reader, telemetry.MetricEdgeServerCertExpiry); ok {
		t.Fatalf("expiry reported before Start: %d", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	got, ok := collectGauge(t, reader, telemetry.MetricEdgeServerCertExpiry)
	if !ok || got != notAfter.Unix() {
		t.Fatalf("%s = %d, want %d (%s)", telemetry.MetricEdgeServerCertExpiry, got, notAfter.Unix(), notAfter)
	}
}

// collectGauge returns the int64 gauge name's single point, and whether
// there is one.
func collectGauge(t testing.TB, reader *sdkmetric.ManualReader, name string) (int64, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if g, ok := mt.Data.(metricdata.Gauge[int64]); ok && mt.Name == name && len(g.DataPoints) == 1 {
				return g.DataPoints[0].Value, true
			}
		}
	}
	return 0, false
}
