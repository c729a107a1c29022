package telemetry

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/telemetry/otlptest"
)

// otlpEnv clears the OTEL_EXPORTER_OTLP_* variables the exporter reads and
// sets those in env.
func otlpEnv(tb testing.TB, env map[string]string) {
	tb.Helper()
	for _, k := range OTLPEnv() {
		tb.Setenv(k, env[k])
	}
}

// TestSetupSecurityIsTheFile: the file's otlpInsecure decides whether
// traces go over TLS, whatever OTEL_EXPORTER_OTLP_* the process inherits
// (the exporter reads them before segmesh's options). On main
// OTEL_EXPORTER_OTLP_INSECURE=true sent the traces in clear though the
// file asked for TLS, and a CA in OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE
// turned TLS on though the file said otlpInsecure (the plaintext collector
// never got a span). A CA there still serves a TLS collector.
func TestSetupSecurityIsTheFile(t *testing.T) {
	ca := testpki.NewCA(t, "Collector CA")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		tls      bool // the collector serves TLS
		insecure bool // segmesh.telemetry.otlpInsecure
		env      map[string]string
	}{
		{"TLS, the CA from the environment", true, false, map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": caFile}},
		{"TLS asked, the environment says insecure", false, false, map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "true"}},
		{"insecure", false, true, nil},
		{"insecure asked, the environment names a CA", false, true, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": caFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			otlpEnv(t, tc.env)
			var cert *tls.Certificate
			if tc.tls {
				c := ca.Server(t, []string{"127.0.0.1"}).TLS()
				cert = &c
			}
			col := otlptest.Start(t, cert)
			p, err := Setup(context.Background(), Options{OTLPEndpoint: col.Addr, OTLPInsecure: tc.insecure})
			if err != nil {
				t.Fatal(err)
			}
			_, span := p.Tracer.Tracer("test").Start(context.Background(), "edge.Test")
			span.End()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			done := make(chan struct{})
			go func() { _ = p.Shutdown(ctx); close(done) }() // flushes the batch
			defer func() { cancel(); <-done }()
			select {
			case b := <-col.FirstBytes():
				if gotTLS := b == otlptest.TLSRecord; gotTLS == tc.insecure {
					t.Fatalf("the exporter spoke TLS: %v, yet otlpInsecure is %v (first byte %#x)", gotTLS, tc.insecure, b)
				}
			case <-ctx.Done():
				t.Fatal("the exporter never connected")
			}
			if tc.tls == !tc.insecure {
				select {
				case n := <-col.Exports():
					if n != 1 {
						t.Fatalf("the collector got %d spans, want 1", n)
					}
				case <-ctx.Done():
					t.Fatal("the collector got no span")
				}
			}
		})
	}
}

// TestSetupRefusesAnEndpointItCannotReach: Setup refuses an otlpEndpoint
// the exporter would take and never export to (on main it started, and
// every export failed in the exporter's own log), naming the setting and
// the fix; host:port starts.
func TestSetupRefusesAnEndpointItCannotReach(t *testing.T) {
	otlpEnv(t, nil)
	for _, tc := range []struct {
		endpoint string
		ok       bool
	}{
		{"http://127.0.0.1:4317", false},
		{"127.0.0.1", false},
		{":4317", false},
		{"127.0.0.1:4317", true},
		{"[::1]:4317", true},
	} {
		t.Run(tc.endpoint, func(t *testing.T) {
			p, err := Setup(context.Background(), Options{OTLPEndpoint: tc.endpoint, OTLPInsecure: true})
			if err == nil {
				_ = p.Shutdown(context.Background())
			}
			if tc.ok != (err == nil) {
				t.Fatalf("Setup(%q) = %v, want it to start: %v", tc.endpoint, err, tc.ok)
			}
			if err != nil && (!strings.Contains(err.Error(), KeyOTLPEndpoint) || !strings.Contains(err.Error(), "fix: ")) {
				t.Errorf("%v does not name %s and the fix", err, KeyOTLPEndpoint)
			}
		})
	}
}

// TestTraceExportFailuresShow: an export the collector refuses is counted
// (MetricTraceExportFailures, present at 0 from the start), noted for
// /readyz and shown by TraceExport until an export succeeds again; before,
// it was only a line in OpenTelemetry's own log.
func TestTraceExportFailuresShow(t *testing.T) {
	p, col := exportInClear(t)
	export := func(refuse error) {
		t.Helper()
		col.Refuse(refuse)
		flushOne(t, p)
	}
	failures := func() float64 {
		t.Helper()
		fams, err := p.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == MetricTraceExportFailures+"_total" {
				return f.GetMetric()[0].GetCounter().GetValue()
			}
		}
		t.Fatalf("no %s_total on /metrics", MetricTraceExportFailures)
		return 0
	}
	if n := failures(); n != 0 || p.Notes() != nil {
		t.Fatalf("at the start: %v failures, notes %q", n, p.Notes())
	}
	export(status.Error(codes.PermissionDenied, "collector says no"))
	notes, st := p.Notes(), p.TraceExport()
	if n := failures(); n != 1 || len(notes) != 1 || !strings.Contains(notes[0], "collector says no") || !strings.Contains(notes[0], col.Addr) ||
		st.Failures != 1 || st.LastError == "" || st.LastErrorAt.IsZero() {
		t.Fatalf("after a refused export: %v failures, notes %q, status %+v", n, notes, st)
	}
	export(nil)
	if st := p.TraceExport(); failures() != 1 || p.Notes() != nil || st.LastError != "" || st.LastSuccessAt.IsZero() {
		t.Fatalf("after an export that succeeded: notes %q, status %+v", p.Notes(), st)
	}
}

// exportInClear returns providers exporting without TLS to a fake
// collector, with no OTEL_EXPORTER_OTLP_* variable set.
func exportInClear(t *testing.T) (*Providers, *otlptest.Collector) {
	t.Helper()
	otlpEnv(t, nil)
	col := otlptest.Start(t, nil)
	p, err := Setup(context.Background(), Options{OTLPEndpoint: col.Addr, OTLPInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p, col
}

// flushOne ends one span on p and flushes it, waiting at most 20 s.
func flushOne(t *testing.T, p *Providers) {
	t.Helper()
	tp := p.Tracer.(*sdktrace.TracerProvider)
	_, span := tp.Tracer("test").Start(context.Background(), "edge.Test")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = tp.ForceFlush(ctx)
}
