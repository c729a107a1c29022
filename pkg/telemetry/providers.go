package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/segmesh/segmesh/pkg/problem"
)

// Options configures Setup.
type Options struct {
	// OTLPEndpoint sends traces over OTLP/gRPC (host:port); empty means no export.
	OTLPEndpoint string
	// OTLPInsecure sends OTLP without TLS (a collector on loopback or in the pod).
	OTLPInsecure bool
}

// Providers holds the process's meter and tracer providers and the
// Prometheus registry behind /metrics.
type Providers struct {
	// Meter provides every role's meter.
	Meter metric.MeterProvider
	// Tracer provides every role's tracer.
	Tracer trace.TracerProvider
	// Registry is what /metrics serves.
	Registry *prometheus.Registry

	shutdown []func(context.Context) error
	export   *exportWatch // nil: no trace export
}

// Setup builds the providers. Nothing is exported over the network unless
// OTLPEndpoint is set; an endpoint the exporter could never reach is
// refused, as is every error CheckOTLP finds in the OTEL_EXPORTER_OTLP_*
// variables (the start's Validate says the same before).
func Setup(ctx context.Context, o Options) (*Providers, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	p := &Providers{Meter: mp, Registry: reg, Tracer: tracenoop.NewTracerProvider()}
	p.shutdown = append(p.shutdown, mp.Shutdown)
	if o.OTLPEndpoint != "" {
		if err := endpointError(o.OTLPEndpoint); err != nil {
			return nil, fmt.Errorf("telemetry: %s %q %v; fix: %s", KeyOTLPEndpoint, maskUserinfo(o.OTLPEndpoint), err, endpointFix)
		}
		// The exporter reads the OTEL_EXPORTER_OTLP_* files itself: what
		// config check refuses in them is refused here too.
		for _, pr := range CheckOTLP(o, os.Getenv) {
			if pr.Severity == problem.SeverityError {
				return nil, fmt.Errorf("telemetry: %s %q %s; fix: %s", pr.Key, pr.Value, pr.Message, pr.Fix)
			}
		}
		te, err := otlptracegrpc.New(ctx, exporterOptions(o)...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP exporter for %s: %w", o.OTLPEndpoint, err)
		}
		failures, err := mp.Meter("segmesh/telemetry").Int64Counter(MetricTraceExportFailures,
			metric.WithDescription("trace exports to segmesh.telemetry.otlpEndpoint that failed (their spans are lost)"))
		if err != nil {
			return nil, fmt.Errorf("telemetry: %s: %w", MetricTraceExportFailures, err)
		}
		failures.Add(ctx, 0) // the series shows from the start
		p.export = &exportWatch{SpanExporter: te, failures: failures, now: time.Now, state: TraceExport{Endpoint: o.OTLPEndpoint}}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(p.export))
		p.Tracer = tp
		p.shutdown = append(p.shutdown, tp.Shutdown)
	}
	return p, nil
}

// MetricsHandler serves the Prometheus text format.
func (p *Providers) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(p.Registry, promhttp.HandlerOpts{})
}

// Shutdown flushes and stops the providers.
func (p *Providers) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range p.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}
