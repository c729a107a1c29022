package telemetry

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/pkg/problem"
	"github.com/segmesh/segmesh/pkg/telemetry/otlptest"
)

// TestAttackEndpointTheExporterDrops: an otlpEndpoint that is host:port to
// net.SplitHostPort but not a URL's host (an IPv6 zone written as Go's
// net package writes it, a character a host cannot hold, user
// information) is dropped by the exporter's WithEndpointURL with a line in
// OpenTelemetry's own log: it then exports to OTEL_EXPORTER_OTLP_ENDPOINT
// (or localhost:4317) with the environment's OTEL_EXPORTER_OTLP_INSECURE,
// the two variables CheckOTLP reports as "not used". On main CheckOTLP
// and Setup passed these, and the environment's plaintext collector got
// the spans in clear though the file asked for TLS.
func TestAttackEndpointTheExporterDrops(t *testing.T) {
	for _, endpoint := range []string{
		"[fe80::1%eth0]:4317",
		"otel collector:4317",
		"otel%collector:4317",
		"tracing-token@127.0.0.1:4317",
	} {
		t.Run(endpoint, func(t *testing.T) {
			elsewhere := otlptest.Start(t, nil) // plaintext, named by the environment only
			otlpEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + elsewhere.Addr, "OTEL_EXPORTER_OTLP_INSECURE": "true"})
			for _, p := range CheckOTLP(Options{OTLPEndpoint: endpoint}, func(string) string { return "" }) {
				if p.Key == KeyOTLPEndpoint && p.Severity == problem.SeverityError {
					if strings.Contains(p.String(), "tracing-token") {
						t.Errorf("the refusal shows the endpoint's user information: %s", p)
					}
					goto setup
				}
			}
			t.Errorf("CheckOTLP passed %q", endpoint)
		setup:
			p, err := Setup(context.Background(), Options{OTLPEndpoint: endpoint})
			if err != nil {
				if strings.Contains(err.Error(), "tracing-token") {
					t.Errorf("Setup's refusal shows the endpoint's user information: %v", err)
				}
				return
			}
			t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
			flushOne(t, p)
			t.Errorf("Setup started an exporter for %q; the environment's plaintext collector got %d spans", endpoint, elsewhere.Spans())
		})
	}
}

// TestAttackCollectorsErrorText: the text of a failed export is the
// collector's (a gRPC status message, a partial success's error message):
// a collector, or whoever answers in its place without TLS, chooses it.
// /readyz and /status.json show it on every request; it is cut as a panic
// value is (MaxPanicValue) and kept on one line, so it cannot add lines
// to /readyz that read as a role's.
func TestAttackCollectorsErrorText(t *testing.T) {
	p, col := exportInClear(t)
	col.Refuse(status.Error(codes.PermissionDenied, "no\nedge: ready\n"+strings.Repeat("x", 1<<20)))
	flushOne(t, p)
	notes, st := p.Notes(), p.TraceExport()
	if len(notes) != 1 || st.LastError == "" {
		t.Fatalf("a refused export: notes %q, status %+v", notes, st)
	}
	if len(st.LastError) > 2*MaxPanicValue || len(notes[0]) > 4*MaxPanicValue {
		t.Errorf("the collector's text is kept whole: %d bytes on /status.json, %d on /readyz", len(st.LastError), len(notes[0]))
	}
	if strings.Contains(notes[0], "\n") || strings.Contains(st.LastError, "\n") {
		t.Errorf("the collector's text adds lines to /readyz: %q", notes[0][:min(len(notes[0]), 200)])
	}
}

// TestAttackEndpointCredentialsShown: user information written into the
// export's address (the file's otlpEndpoint, or an OTEL_EXPORTER_OTLP_*
// ENDPOINT URL, as some collectors' examples show it) is a credential the
// OTLP/gRPC exporter never sends. CheckOTLP's findings go to `config
// check`'s output, the start's log and /status; a Problem's value is
// "masked for secrets". On main they quoted it whole.
func TestAttackEndpointCredentialsShown(t *testing.T) {
	const pass = "s3cr3t-t0ken"
	for _, tc := range []struct {
		name     string
		endpoint string
		env      map[string]string
	}{
		{"the file's endpoint with a password", "tracing:" + pass + "@otel-collector:4317", nil},
		{"the file's endpoint with a token as the user", pass + "@otel-collector:4317", nil},
		{"the environment's endpoint, overruled", "otel-collector:4317", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://tracing:" + pass + "@other:4317"}},
		{"the environment's endpoint alone", "", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://" + pass + "@other:4317"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := CheckOTLP(Options{OTLPEndpoint: tc.endpoint}, func(k string) string { return tc.env[k] })
			if len(ps) == 0 {
				t.Fatalf("CheckOTLP found nothing")
			}
			for _, p := range ps {
				if strings.Contains(p.String(), pass) {
					t.Errorf("CheckOTLP shows the credential: %s", p)
				}
			}
			if tc.env != nil {
				return
			}
			otlpEnv(t, nil)
			p, err := Setup(context.Background(), Options{OTLPEndpoint: tc.endpoint})
			if err == nil {
				_ = p.Shutdown(context.Background())
				t.Fatalf("Setup started")
			}
			if strings.Contains(err.Error(), pass) {
				t.Errorf("Setup's refusal shows the credential: %v", err)
			}
		})
	}
}

// TestAttackEndpointHostNamedLikeAResolver: a collector whose host gRPC
// reads as a resolver's scheme (unix:4317 is, to grpc.NewClient, the Unix
// socket "4317" in the working directory) passes CheckOTLP as host:port.
// On main the exporter sent the traces to that socket, which whoever can
// write the working directory may serve, instead of the host "unix".
func TestAttackEndpointHostNamedLikeAResolver(t *testing.T) {
	otlpEnv(t, nil)
	dir := t.TempDir()
	t.Chdir(dir)
	l, err := net.Listen("unix", "4317")
	if err != nil {
		t.Fatal(err)
	}
	var squatter otlptest.Collector
	s := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(s, &squatter)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	// With TLS the target is the same (exporterOptions).
	p, err := Setup(context.Background(), Options{OTLPEndpoint: "unix:4317", OTLPInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	flushOne(t, p)
	_ = p.Shutdown(context.Background())
	if n := squatter.Spans(); n != 0 {
		t.Errorf("the Unix socket %s/4317 got %d spans meant for the host unix", dir, n)
	}
}

// TestAttackTracesInClearAcrossTheNetwork: spans carry users' UPNs and
// device IDs; with otlpInsecure they cross the network in clear, and so do
// the OTEL_EXPORTER_OTLP_*HEADERS the exporter adds to every export (an
// Authorization header or a collector's API key). On main CheckOTLP said
// nothing of either: a legal but suspicious setting is a warning (as the
// admin port without a token beyond loopback is), naming no header value.
// A collector on loopback is the setting's purpose and stays quiet.
// (CheckOTLP's other rows on OTEL_EXPORTER_OTLP_* sit in suite's
// TestValidateExaminesTheOTLPExport.)
func TestAttackTracesInClearAcrossTheNetwork(t *testing.T) {
	const key = "Bearer s3cr3t-api-key"
	for _, tc := range []struct {
		name     string
		endpoint string
		env      map[string]string
		want     []string // the keys warned about
	}{
		{"a collector on loopback", "127.0.0.1:4317", nil, nil},
		{"a collector named localhost", "localhost:4317", nil, nil},
		{"a collector on IPv6 loopback", "[::1]:4317", nil, nil},
		{"a collector elsewhere", "otel-collector.monitoring:4317", nil, []string{KeyOTLPInsecure}},
		{"a collector at an address", "10.0.0.7:4317", nil, []string{KeyOTLPInsecure}},
		{"headers to a collector on loopback", "127.0.0.1:4317", map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=" + key}, nil},
		{"headers to a collector elsewhere", "otel-collector:4317", map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=" + key},
			[]string{KeyOTLPInsecure, "OTEL_EXPORTER_OTLP_HEADERS"}},
		{"the traces' headers to a collector elsewhere", "10.0.0.7:4317", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-api-key=" + key},
			[]string{KeyOTLPInsecure, "OTEL_EXPORTER_OTLP_TRACES_HEADERS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range CheckOTLP(Options{OTLPEndpoint: tc.endpoint, OTLPInsecure: true}, func(k string) string { return tc.env[k] }) {
				if strings.Contains(p.String(), "s3cr3t") {
					t.Errorf("CheckOTLP shows a header's value: %s", p)
				}
				if p.Severity == problem.SeverityWarning {
					got = append(got, p.Key)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("CheckOTLP warns about %q, want %q", got, tc.want)
			}
		})
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		if ps := CheckOTLP(Options{OTLPEndpoint: "otel-collector:4317"}, func(k string) string {
			if k == name {
				return "Authorization=" + key
			}
			return ""
		}); len(ps) != 0 {
			t.Errorf("with TLS, %s: %v, want nothing", name, ps)
		}
	}
}

// TestAttackEnvFileBlocksTheStart: with otlpInsecure the exporter still
// reads the OTEL_EXPORTER_OTLP_* TLS files at the start (os.ReadFile,
// before segmesh's options apply), and CheckOTLP reported them as merely
// "not used". On main a FIFO named there passed `config check` and the
// start's Validate, then Setup blocked for good on reading it (seen: still
// blocked after 5 s, before any role or the admin port). A file that is
// not regular is refused; a regular one stays ignored.
func TestAttackEnvFileBlocksTheStart(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "ca.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	regular := filepath.Join(dir, "regular.pem")
	if err := os.WriteFile(regular, []byte("unused\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
		"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"} {
		for _, tc := range []struct {
			path string
			sev  problem.Severity
		}{{fifo, problem.SeverityError}, {regular, problem.SeverityIgnored}} {
			ps := CheckOTLP(Options{OTLPEndpoint: "127.0.0.1:4317", OTLPInsecure: true}, func(k string) string {
				if k == name {
					return tc.path
				}
				return ""
			})
			if len(ps) != 1 || ps[0].Key != name || ps[0].Severity != tc.sev {
				t.Errorf("%s=%s: CheckOTLP = %v, want one %s on it", name, filepath.Base(tc.path), ps, tc.sev)
			}
		}
	}
	// With TLS the CA is read as the exporter will, without blocking.
	ps := CheckOTLP(Options{OTLPEndpoint: "127.0.0.1:4317"}, func(k string) string {
		if k == "OTEL_EXPORTER_OTLP_CERTIFICATE" {
			return fifo
		}
		return ""
	})
	if len(ps) != 1 || ps[0].Severity != problem.SeverityError {
		t.Errorf("a FIFO as the CA with TLS: CheckOTLP = %v, want one error", ps)
	}
}
