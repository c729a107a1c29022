package crl

import (
	"context"
	"crypto/x509"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/segmesh/segmesh/pkg/crl/crltest"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
	"github.com/segmesh/segmesh/pkg/role"
)

// points returns the value of every point of metric name whose attributes
// include want, summed: int64 sums and gauges, float64 gauges.
func points(tb testing.TB, reader *sdkmetric.ManualReader, name string, want ...attribute.KeyValue) (float64, int) {
	tb.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		tb.Fatal(err)
	}
	match := func(s attribute.Set) bool {
		for _, kv := range want {
			if v, ok := s.Value(kv.Key); !ok || v != kv.Value {
				return false
			}
		}
		return true
	}
	var total float64
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if mt.Name != name {
				continue
			}
			switch d := mt.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						total, n = total+float64(p.Value), n+1
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						total, n = total+float64(p.Value), n+1
					}
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						total, n = total+p.Value, n+1
					}
				}
			default:
				tb.Fatalf("%s: unexpected data %T", name, mt.Data)
			}
		}
	}
	return total, n
}

// meteredService starts the role with cfg, its metrics read by the
// returned reader; opts come after the fixture's own (a later WithTrusted
// replaces its trust).
func (f *fixture) meteredService(t *testing.T, cfg Config, opts ...Option) (*Service, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	s, err := New(role.Deps{Logger: slog.New(slog.DiscardHandler), Meter: mp.Meter("crl")}, append([]Option{WithConfig(cfg),
		WithTrusted(func() []*x509.Certificate { return []*x509.Certificate{f.ca.Cert} }),
		WithFetcher(&fetch.Fetcher{Timeout: 5 * time.Second})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, reader
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	// Expired a day ago: in force, stale.
	f.cdp.serve(f.ca.CRL(t, crltest.CRLOptions{Number: 1, ThisUpdate: f.now.Add(-48 * time.Hour), NextUpdate: f.now.Add(-24 * time.Hour),
		Revoked: []crltest.Revoked{{Serial: bigInt(5), At: f.now.Add(-49 * time.Hour)}, {Serial: bigInt(6), At: f.now.Add(-49 * time.Hour)}}}))
	s, reader := f.meteredService(t, f.config(t))
	f.cdp.serve([]byte("garbage"))
	s.refresher.RefreshNow(context.Background())

	url := attribute.String("url", f.cdp.url())
	issuer := attribute.String("issuer", f.ca.Cert.Subject.String())
	checks := []struct {
		name  string
		attrs []attribute.KeyValue
		want  float64
	}{
		{"segmesh_crl_fetches", []attribute.KeyValue{url, attribute.String("result", "ok")}, 1},
		{"segmesh_crl_fetches", []attribute.KeyValue{url, attribute.String("result", "malformed")}, 1},
		{"segmesh_crl_stale", []attribute.KeyValue{issuer, url}, 1},
		{"segmesh_crl_entries", []attribute.KeyValue{issuer, url}, 2},
	}
	for _, c := range checks {
		if got, _ := points(t, reader, c.name, c.attrs...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.attrs, got, c.want)
		}
	}
	age, n := points(t, reader, "segmesh_crl_age_seconds", issuer)
	if n != 1 || age < 47*3600 || age > 49*3600 {
		t.Errorf("segmesh_crl_age_seconds = %v (%d points), want about 48 h", age, n)
	}
	if v, n := points(t, reader, "segmesh_crl_snapshot_version"); n != 1 || v != 1 {
		t.Errorf("segmesh_crl_snapshot_version = %v (%d points), want 1", v, n)
	}
}

// TestCRLFetchPanicCounted: a fetch whose check panics (the trust callback
// here, in a parser's place) counts as a failed fetch of its URL, result
// "panic", and in segmesh_background_panics (task crl_fetch), which the
// panic alert watches; the refresher logs it with its stack.
func TestCRLFetchPanicCounted(t *testing.T) {
	f := newFixture(t)
	f.cdp.serve(f.ca.CRL(t, crltest.CRLOptions{Number: 1, ThisUpdate: f.now.Add(-time.Hour), NextUpdate: f.now.Add(24 * time.Hour)}))
	var armed atomic.Bool
	s, reader := f.meteredService(t, f.config(t), WithTrusted(func() []*x509.Certificate {
		if armed.Load() {
			panic("unexpected CRL bytes")
		}
		return []*x509.Certificate{f.ca.Cert}
	}))
	armed.Store(true)
	f.cdp.serve(f.ca.CRL(t, crltest.CRLOptions{Number: 2, ThisUpdate: f.now, NextUpdate: f.now.Add(24 * time.Hour)}))
	s.refresher.RefreshNow(context.Background())
	armed.Store(false)
	url := attribute.String("url", f.cdp.url())
	for _, c := range []struct {
		name  string
		attrs []attribute.KeyValue
	}{
		{"segmesh_crl_fetches", []attribute.KeyValue{url, attribute.String("result", "panic")}},
		{"segmesh_background_panics", []attribute.KeyValue{attribute.String("task", "crl_fetch")}},
	} {
		if got, _ := points(t, reader, c.name, c.attrs...); got != 1 {
			t.Errorf("%s%v = %v, want 1", c.name, c.attrs, got)
		}
	}
}
