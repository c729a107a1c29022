package telemetry

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// TestAttackOTLPTrustFilesReplaceable (iotlp): the trace exporter's CA
// (OTEL_EXPORTER_OTLP_*CERTIFICATE) and client certificate
// (OTEL_EXPORTER_OTLP_*CLIENT_CERTIFICATE) were read as any public file
// (safefile.Read). Whoever can replace the CA poses as the collector and
// reads every span (UPNs, device IDs). On main a 0666 CA, or one in a 0777
// directory, passed CheckOTLP and Setup. config check and the start must
// refuse such a file, naming the variable, the path and the chmod; a 0644
// file in a 0700 directory passes.
func TestAttackOTLPTrustFilesReplaceable(t *testing.T) {
	ca := testpki.NewCA(t, "Collector CA")
	client := ca.Server(t, []string{"segmesh"})
	keyFile := safefiletest.Tree{File: 0o600}.Make(t, "keys", "client.key", client.KeyPEM(t))
	for _, name := range []string{"OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
		"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"} {
		content := ca.PEM()
		if strings.Contains(name, "CLIENT") {
			content = client.PEM()
		}
		for _, tc := range []struct {
			name string
			tree safefiletest.Tree
			want string // "" accepted
		}{
			{"held: 0644 in 0700", safefiletest.Tree{File: 0o644}, ""},
			{"0666", safefiletest.Tree{File: 0o666}, "has mode 0666"},
			{"0620", safefiletest.Tree{File: 0o620}, "has mode 0620"},
			{"in a directory others may write", safefiletest.Tree{File: 0o644, Dir: 0o777}, "has mode 0777"},
		} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				path := tc.tree.Make(t, "otlp", "tls.pem", content)
				env := map[string]string{name: path}
				if strings.Contains(name, "CLIENT") {
					env[strings.Replace(name, "CERTIFICATE", "KEY", 1)] = keyFile
				}
				otlpEnv(t, env)
				errs := otlpErrors(Options{OTLPEndpoint: "collector:4317"}, os.Getenv)
				p, err := Setup(context.Background(), Options{OTLPEndpoint: "collector:4317"})
				if err == nil {
					t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
				}
				if tc.want == "" {
					if len(errs) > 0 || err != nil {
						t.Fatalf("refused: CheckOTLP %q, Setup %v", errs, err)
					}
					return
				}
				if len(errs) != 1 {
					t.Fatalf("CheckOTLP errors = %q; want one refusal of the replaceable file", errs)
				}
				if err == nil {
					t.Fatalf("Setup started with %s %s", name, tc.name)
				}
				for _, said := range []string{errs[0], err.Error()} {
					for _, w := range []string{name + " ", path, tc.want, "chmod "} {
						if !strings.Contains(said, w) {
							t.Errorf("refusal %q does not say %q", said, w)
						}
					}
				}
			})
		}
	}
}
