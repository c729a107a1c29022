package testmetric

import (
	"context"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// fatalTB records a Fatalf instead of ending the test.
type fatalTB struct {
	testing.TB
	failed string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

func TestSum(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	m := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)).Meter("test")
	c, err := m.Int64Counter("panics")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.Add(ctx, 2, metric.WithAttributes(attribute.String("task", "a"), attribute.String("role", "edge")))
	c.Add(ctx, 3, metric.WithAttributes(attribute.String("task", "b"), attribute.String("role", "edge")))
	c.Add(ctx, 5)
	g, err := m.Float64Gauge("gauge")
	if err != nil {
		t.Fatal(err)
	}
	g.Record(ctx, 1)

	tests := []struct {
		name   string
		metric string
		want   []attribute.KeyValue
		sum    int64
	}{
		{"every point", "panics", nil, 10},
		{"one attribute", "panics", []attribute.KeyValue{attribute.String("task", "a")}, 2},
		{"two attributes", "panics", []attribute.KeyValue{attribute.String("task", "b"), attribute.String("role", "edge")}, 3},
		{"an attribute no point has", "panics", []attribute.KeyValue{attribute.String("task", "c")}, 0},
		{"a metric not recorded", "other", nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Sum(t, reader, tc.metric, tc.want...); got != tc.sum {
				t.Fatalf("Sum = %d, want %d", got, tc.sum)
			}
		})
	}
	f := &fatalTB{TB: t}
	Sum(f, reader, "gauge")
	if f.failed == "" {
		t.Fatal("Sum of a gauge did not fail the test")
	}
}
