package telemetry

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLoggerRedactsSensitiveKeys(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := NewLogger(&buf, "debug", format)
			if err != nil {
				t.Fatal(err)
			}
			log.Info("bind", "password", "hunter2", "Authorization", "Negotiate YIIabc", "session_key", []byte{1, 2, 3},
				"upn", "alice@lab.test", "clientCertTrustStorePasscode", "pfxpass")
			out := buf.String()
			for _, leak := range []string{"hunter2", "YIIabc", "pfxpass", "[1 2 3]", "AQID"} {
				if strings.Contains(out, leak) {
					t.Fatalf("leaked %q: %s", leak, out)
				}
			}
			if !strings.Contains(out, "alice@lab.test") {
				t.Fatalf("dropped a normal attribute: %s", out)
			}
		})
	}
}

func TestNewLoggerRejectsBadSettings(t *testing.T) {
	if _, err := NewLogger(io.Discard, "loud", "text"); err == nil {
		t.Fatal("accepted level loud")
	}
	if _, err := NewLogger(io.Discard, "info", "xml"); err == nil {
		t.Fatal("accepted format xml")
	}
}

func TestMetricsEndpointServesOTelInstruments(t *testing.T) {
	p, err := Setup(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Shutdown(context.Background()) }()
	c, err := p.Meter.Meter("test").Int64Counter("segmesh_test_requests")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 3)
	rec := httptest.NewRecorder()
	p.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "segmesh_test_requests_total 3") {
		t.Fatalf("metric missing from /metrics:\n%s", rec.Body.String())
	}
}
