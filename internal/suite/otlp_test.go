package suite

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// TestValidateExaminesTheOTLPExport: `config check` and the start (both
// Validate) examine the trace export as the exporter will use it: an
// endpoint it cannot dial (a URL where host:port belongs, no port, no
// host) never exports and says so only in the exporter's own log, a TLS
// file from OTEL_EXPORTER_OTLP_* that cannot load is dropped by the
// exporter (it logs and goes on with the system roots), and an export
// address in the environment alone exports nothing. On main Validate said
// nothing of any of them.
func TestValidateExaminesTheOTLPExport(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, testpki.NewCA(t, "Collector CA").PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	type want struct {
		key string
		sev config.Severity
	}
	errOn := func(key string) *want { return &want{key, config.SeverityError} }
	for _, tc := range []struct {
		name     string
		endpoint string
		insecure bool
		env      map[string]string
		want     *want // nil: no problem on the export
	}{
		{"host:port", "otel-collector:4317", false, nil, nil},
		{"an IPv6 address", "[::1]:4317", true, nil, nil},
		{"none", "", false, nil, nil},
		{"a CA file that loads", "otel-collector:4317", false, map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": ca}, nil},
		{"an http URL", "http://otel-collector:4317", false, nil, errOn("segmesh.telemetry.otlpEndpoint")},
		{"an https URL", "https://otel-collector:4317", false, nil, errOn("segmesh.telemetry.otlpEndpoint")},
		{"no port", "otel-collector", false, nil, errOn("segmesh.telemetry.otlpEndpoint")},
		{"no host", ":4317", false, nil, errOn("segmesh.telemetry.otlpEndpoint")},
		{"a port out of range", "otel-collector:70000", false, nil, errOn("segmesh.telemetry.otlpEndpoint")},
		{"padded", " otel-collector:4317", false, nil, errOn("segmesh.telemetry.otlpEndpoint")},
		{"a CA file missing", "otel-collector:4317", false, map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": missing}, errOn("OTEL_EXPORTER_OTLP_CERTIFICATE")},
		{"a CA file without a certificate", "otel-collector:4317", false, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": notPEM}, errOn("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE")},
		{"a client certificate without its key", "otel-collector:4317", false, map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": notPEM}, errOn("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")},
		{"a client key pair that does not load", "otel-collector:4317", false, map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": notPEM, "OTEL_EXPORTER_OTLP_CLIENT_KEY": notPEM}, errOn("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")},
		{"an endpoint in the environment only", "", false, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4317"}, &want{"OTEL_EXPORTER_OTLP_ENDPOINT", config.SeverityWarning}},
		{"an endpoint in the environment overruled", "otel-collector:4317", false, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://other:4317"}, &want{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", config.SeverityIgnored}},
		{"insecure without an endpoint", "", true, nil, &want{"segmesh.telemetry.otlpInsecure", config.SeverityIgnored}},
		{"the environment's insecure overruled", "otel-collector:4317", false, map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "true"}, &want{"OTEL_EXPORTER_OTLP_INSECURE", config.SeverityIgnored}},
		{"the environment's CA unused without TLS", "127.0.0.1:4317", true, map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": missing}, &want{"OTEL_EXPORTER_OTLP_CERTIFICATE", config.SeverityIgnored}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range telemetry.OTLPEnv() {
				t.Setenv(k, tc.env[k])
			}
			c := config.Default()
			c.Segmesh.Telemetry.OTLPEndpoint, c.Segmesh.Telemetry.OTLPInsecure = tc.endpoint, tc.insecure
			var got []config.Problem
			for _, p := range Validate(&c, &config.Report{}, nil) {
				if slices.Contains(telemetry.OTLPEnv(), p.Key) || p.Key == telemetry.KeyOTLPEndpoint || p.Key == telemetry.KeyOTLPInsecure {
					got = append(got, p)
				}
			}
			if tc.want == nil {
				if len(got) > 0 {
					t.Fatalf("Validate = %v, want nothing on the export", got)
				}
				return
			}
			if len(got) != 1 || got[0].Key != tc.want.key || got[0].Severity != tc.want.sev || got[0].Message == "" {
				t.Fatalf("Validate = %v, want one %s on %s", got, tc.want.sev, tc.want.key)
			}
			if got[0].Severity == config.SeverityError && got[0].Fix == "" {
				t.Errorf("%s has no fix", got[0])
			}
		})
	}
}
