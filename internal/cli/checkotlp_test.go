package cli

import (
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/telemetry"
)

// TestConfigCheckNamesAnOTLPEndpointThatNeverExports: `config check` fails
// on a trace export address given as a URL, which `segmesh run` took on
// main and never exported to, and passes host:port.
func TestConfigCheckNamesAnOTLPEndpointThatNeverExports(t *testing.T) {
	for _, k := range telemetry.OTLPEnv() {
		t.Setenv(k, "")
	}
	for _, tc := range []struct {
		endpoint string
		want     int
	}{
		{"https://otel-collector:4317", 1},
		{"otel-collector:4317", 0},
	} {
		t.Run(tc.endpoint, func(t *testing.T) {
			p := writeStrict(t, t.TempDir(), func(m map[string]any) {
				m["segmesh"].(map[string]any)["telemetry"] = map[string]any{"otlpEndpoint": tc.endpoint}
			})
			code, out, errOut := run(t, "config", "check", "-q", p)
			if code != tc.want {
				t.Fatalf("config check: exit %d, want %d:\n%s%s", code, tc.want, out, errOut)
			}
			if named := strings.Contains(out, "error: "+telemetry.KeyOTLPEndpoint); named != (tc.want == 1) {
				t.Errorf("names %s: %v, want %v:\n%s", telemetry.KeyOTLPEndpoint, named, tc.want == 1, out)
			}
		})
	}
}
