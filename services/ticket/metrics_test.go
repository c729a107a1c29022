package ticket

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// TestTGTGauges: once the role holds a TGT it reports, per realm, its age
// and when it ends, the series behind the dashboard's "TGT lifetime left"
// and the TGT alert.
func TestTGTGauges(t *testing.T) {
	k := fakeRealm(t)
	clk := &clock{t: time.Now()}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	c := config.Default()
	svc, err := New(role.Deps{Config: &c, Meter: mp.Meter("ticket")}, WithConfig(testConfig(k.Addr())), WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	tgts := svc.engine().client.TGTs()
	if len(tgts) != 1 {
		t.Fatalf("TGTs: %v", tgts)
	}
	clk.Add(90 * time.Second)
	got := gauges(t, reader)
	for _, tc := range []struct {
		name string
		want float64
	}{
		{telemetry.MetricTicketTGTExpiry, float64(tgts[0].EndTime.Unix())},
		{telemetry.MetricTicketTGTAge, clk.Now().Sub(tgts[0].AuthTime).Seconds()},
	} {
		v, ok := got[tc.name+"/"+realm]
		if !ok || v != tc.want {
			t.Errorf("%s{realm=%s} = %v (present %v), want %v", tc.name, realm, v, ok, tc.want)
		}
	}
}

// gauges returns every float64 gauge point of reader as "name/realm".
func gauges(tb testing.TB, reader *sdkmetric.ManualReader) map[string]float64 {
	tb.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			g, ok := mt.Data.(metricdata.Gauge[float64])
			if !ok {
				continue
			}
			for _, dp := range g.DataPoints {
				r, _ := dp.Attributes.Value(telemetry.AttrRealm)
				out[mt.Name+"/"+r.AsString()] = dp.Value
			}
		}
	}
	return out
}
