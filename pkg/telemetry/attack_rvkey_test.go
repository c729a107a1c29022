package telemetry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/problem"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// TestAttackOTLPClientKeyExposed (rvkey, review of a61117f): the trace
// exporter's client key (OTEL_EXPORTER_OTLP_CLIENT_KEY) is read by
// CheckOTLP as a public file (safefile.Read). A key other local users may
// read (0644, 0604, or in a directory they may write) lets them pose as
// the gateway to the collector; config check and the start must refuse it
// with the key's variable and a chmod, and never show key material. A 0600
// key passes.
func TestAttackOTLPClientKeyExposed(t *testing.T) {
	ca := testpki.NewCA(t, "Collector CA")
	client := ca.Server(t, []string{"segmesh"})
	certFile := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(certFile, client.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tree safefiletest.Tree
		want string // "" accepted
	}{
		{"held: 0600", safefiletest.Tree{File: 0o600}, ""},
		{"0644", safefiletest.Tree{File: 0o644}, "has mode 0644"},
		{"0604", safefiletest.Tree{File: 0o604}, "has mode 0604"},
		{"in a directory others may write", safefiletest.Tree{File: 0o600, Dir: 0o777}, "has mode 0777"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keyFile := tc.tree.Make(t, "keys", "client.key", client.KeyPEM(t))
			env := map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": certFile, "OTEL_EXPORTER_OTLP_CLIENT_KEY": keyFile}
			errs := otlpErrors(Options{OTLPEndpoint: "collector:4317"}, func(k string) string { return env[k] })
			if tc.want == "" {
				if len(errs) > 0 {
					t.Fatalf("refused: %q", errs)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("CheckOTLP errors = %q; want one refusal of the exposed key", errs)
			}
			for _, w := range []string{"OTEL_EXPORTER_OTLP_CLIENT_KEY", keyFile, tc.want, "chmod"} {
				if !strings.Contains(errs[0], w) {
					t.Errorf("refusal %q does not say %q", errs[0], w)
				}
			}
			if strings.Contains(errs[0], "-----BEGIN") {
				t.Errorf("refusal carries key material: %q", errs[0])
			}
		})
	}
}

// otlpErrors returns CheckOTLP's errors on o, each as one line with its
// key, value, message and fix.
func otlpErrors(o Options, getenv func(string) string) []string {
	var errs []string
	for _, p := range CheckOTLP(o, getenv) {
		if p.Severity == problem.SeverityError {
			errs = append(errs, p.Key+" "+p.Value+" "+p.Message+" (fix: "+p.Fix+")")
		}
	}
	return errs
}
