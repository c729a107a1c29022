// Package testmetric reads what a test's OpenTelemetry ManualReader
// collected: the sum of an int64 counter's points, all of them or those
// with given attributes. The edge, ticket and identity tests had each
// written this reader (sumCounter, panicCount, counter).
package testmetric

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Sum collects reader and returns the sum of the int64 counter name's
// points whose attributes include every one of want (none: every point);
// 0 when nothing was counted. A metric of that name that is not an int64
// sum fails tb.
func Sum(tb testing.TB, reader *sdkmetric.ManualReader, name string, want ...attribute.KeyValue) int64 {
	tb.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		tb.Fatal(err)
	}
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				tb.Fatalf("%s is a %T, not an int64 sum", name, m.Data)
			}
		points:
			for _, p := range sum.DataPoints {
				for _, kv := range want {
					if v, ok := p.Attributes.Value(kv.Key); !ok || v != kv.Value {
						continue points
					}
				}
				total += p.Value
			}
		}
	}
	return total
}
