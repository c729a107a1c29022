package edge

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"reflect"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// TestSetXForwarded compares setXForwarded with httputil's
// ProxyRequest.SetXForwarded, which it replaces in the outbound header rule,
// on a header whose X-Forwarded-* the rule removed first.
func TestSetXForwarded(t *testing.T) {
	for _, tc := range []struct {
		name, remote, host string
		tls                bool
	}{
		{"IPv4 over TLS", "192.0.2.7:50123", "mail.example.com", true},
		{"IPv6 over TLS", "[2001:db8::7]:443", "mail.example.com:8443", true},
		{"plain HTTP", "198.51.100.1:1", "exchange", false},
		{"no port in the remote address", "192.0.2.7", "mail.example.com", true},
		{"empty remote address and host", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := httptest.NewRequest("POST", "https://x/Microsoft-Server-ActiveSync", nil)
			in.RemoteAddr, in.Host = tc.remote, tc.host
			if !tc.tls {
				in.TLS = nil
			} else if in.TLS == nil {
				in.TLS = &tls.ConnectionState{}
			}
			want := http.Header{"Accept": {"*/*"}}
			(&httputil.ProxyRequest{In: in, Out: &http.Request{Header: want}}).SetXForwarded()
			got := http.Header{"Accept": {"*/*"}}
			setXForwarded(got, in)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("setXForwarded: %v\nSetXForwarded: %v", got, want)
			}
			// Each value stands alone: appending to one must not reach another.
			got["X-Forwarded-For"] = append(got["X-Forwarded-For"], "extra")
			if got.Get("X-Forwarded-Host") != tc.host {
				t.Fatalf("X-Forwarded-Host changed to %q by an append to X-Forwarded-For", got.Get("X-Forwarded-Host"))
			}
		})
	}
}

// TestIsNoopTracer checks the edge starts a span per request exactly when
// its tracer records: not for the no-op tracer the process has with
// tracing off, for the SDK's otherwise.
func TestIsNoopTracer(t *testing.T) {
	if !isNoopTracer(tracenoop.NewTracerProvider().Tracer("segmesh/edge")) {
		t.Fatal("the no-op tracer is not recognised")
	}
	if isNoopTracer(sdktrace.NewTracerProvider().Tracer("segmesh/edge")) {
		t.Fatal("the SDK's tracer is taken for the no-op one: no span would be recorded")
	}
}
