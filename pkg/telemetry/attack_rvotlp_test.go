package telemetry

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// otlpRefusals runs CheckOTLP on o with the process's environment and
// Setup (shut down at the test's end when it starts), as `config check`
// and the start see them. With refused false both must accept; else each
// must refuse once, and their two texts are returned.
func otlpRefusals(t *testing.T, o Options, refused bool) []string {
	t.Helper()
	errs := otlpErrors(o, os.Getenv)
	p, err := Setup(context.Background(), o)
	if err == nil {
		t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	}
	switch {
	case !refused && (len(errs) > 0 || err != nil):
		t.Fatalf("refused: CheckOTLP %q, Setup %v", errs, err)
	case refused && (len(errs) != 1 || err == nil):
		t.Fatalf("CheckOTLP %q, Setup %v; want one refusal from each", errs, err)
	case !refused:
		return nil
	}
	return []string{errs[0], err.Error()}
}

// TestAttackOTLPTracesVariableOverridesGeneral (rvotlp, review of
// c604d34): the exporter reads OTEL_EXPORTER_OTLP_CERTIFICATE and then
// OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE, which wins (the same for the
// client certificate pairs). Both set, one replaceable: the one the
// exporter uses is checked (a replaceable traces CA behind a sound general
// one is refused), and a replaceable general one behind a sound traces one
// is refused too, though unused. Held on main.
func TestAttackOTLPTracesVariableOverridesGeneral(t *testing.T) {
	ca := testpki.NewCA(t, "Collector CA")
	client := ca.Server(t, []string{"segmesh"})
	key := safefiletest.Tree{}.Make(t, "keys", "client.key", client.KeyPEM(t))
	good := func(content []byte) string { return safefiletest.Tree{File: 0o644}.Make(t, "good", "tls.pem", content) }
	bad := func(content []byte) string { return safefiletest.Tree{File: 0o666}.Make(t, "bad", "tls.pem", content) }
	for _, suffix := range []string{envCA, envClientCert} {
		content := ca.PEM()
		if suffix == envClientCert {
			content = client.PEM()
		}
		names := envNames(suffix)
		for _, tc := range []struct {
			name             string
			general, traces  string
			refused, without string // refused: the variable named; "" accepted
		}{
			{"held: both sound", good(content), good(content), "", ""},
			{"traces' own replaceable (used)", good(content), bad(content), names[1], names[0]},
			{"general replaceable (overruled)", bad(content), good(content), names[0], names[1]},
		} {
			t.Run(suffix+"/"+tc.name, func(t *testing.T) {
				env := map[string]string{names[0]: tc.general, names[1]: tc.traces}
				if suffix == envClientCert {
					keys := envNames(envClientKey)
					env[keys[0]], env[keys[1]] = key, key
				}
				otlpEnv(t, env)
				for _, said := range otlpRefusals(t, Options{OTLPEndpoint: "collector:4317"}, tc.refused != "") {
					if !strings.Contains(said, tc.refused+" ") || strings.Contains(said, tc.without) || !strings.Contains(said, "chmod go-w") {
						t.Errorf("refusal %q does not name %s alone with its chmod", said, tc.refused)
					}
				}
			})
		}
	}
}

// TestAttackOTLPCAPlacedAround (rvotlp, review of c604d34): a CA named in
// OTEL_EXPORTER_OTLP_CERTIFICATE that others can replace all the same: a
// link in a sound directory to a file in one others write, a link others
// can replace, a relative name read against a working directory others
// write (the exporter opens it against the process's), a file owned by
// another user, a CA bundle holding a world-readable key. Each is refused
// by CheckOTLP and Setup alike, naming the variable; a Kubernetes volume's
// layout (name -> ..data/name -> ..<timestamp>/name, in a sticky
// directory) and a relative name in a sound directory start. Held on main.
func TestAttackOTLPCAPlacedAround(t *testing.T) {
	ca := testpki.NewCA(t, "Collector CA")
	link := func(t *testing.T, dirMode os.FileMode, target string) string {
		dir := filepath.Join(t.TempDir(), "links")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "ca.pem")
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, dirMode); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
		return p
	}
	inDir := func(t *testing.T, dirMode os.FileMode) string {
		dir := filepath.Dir(safefiletest.Tree{File: 0o644, Dir: dirMode}.Make(t, "cwd", "ca.pem", ca.PEM()))
		t.Chdir(dir)
		return "ca.pem"
	}
	for _, tc := range []struct {
		name string
		path func(t *testing.T) string
		want string // in both refusals; "" accepted
	}{
		{"a link to a file in a directory others write", func(t *testing.T) string {
			return link(t, 0o700, safefiletest.Tree{File: 0o644, Dir: 0o777}.Make(t, "open", "ca.pem", ca.PEM()))
		}, "has mode 0777"},
		{"a link in a directory others write", func(t *testing.T) string {
			return link(t, 0o777, safefiletest.Tree{File: 0o644}.Make(t, "sound", "ca.pem", ca.PEM()))
		}, "has mode 0777"},
		{"a relative name in a working directory others write", func(t *testing.T) string { return inDir(t, 0o777) }, "has mode 0777"},
		{"held: a relative name in a sound working directory", func(t *testing.T) string { return inDir(t, 0o700) }, ""},
		{"a file owned by another user", func(t *testing.T) string {
			return safefiletest.Tree{File: 0o644, FileOwner: 4242}.Make(t, "other", "ca.pem", ca.PEM())
		}, "owned by user 4242"},
		{"a CA bundle with its key, world-readable", func(t *testing.T) string {
			return safefiletest.Tree{File: 0o644}.Make(t, "bundle", "ca.pem", append(ca.PEM(), ca.KeyPEM(t)...))
		}, "holds a private key"},
		{"held: a Kubernetes volume's layout in a sticky directory", func(t *testing.T) string {
			vol := filepath.Join(t.TempDir(), "vol")
			ts := filepath.Join(vol, "..2026_12_06_06_00_00.1")
			if err := os.MkdirAll(ts, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(ts, "ca.crt"), ca.PEM(), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := errors.Join(os.Symlink(filepath.Base(ts), filepath.Join(vol, "..data")),
				os.Symlink("..data/ca.crt", filepath.Join(vol, "ca.crt")), os.Chmod(vol, 0o777|os.ModeSticky)); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(vol, 0o700) })
			return filepath.Join(vol, "ca.crt")
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path(t)
			otlpEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": path})
			for _, said := range otlpRefusals(t, Options{OTLPEndpoint: "collector:4317"}, tc.want != "") {
				for _, w := range []string{"OTEL_EXPORTER_OTLP_CERTIFICATE ", tc.want} {
					if !strings.Contains(said, w) {
						t.Errorf("refusal %q does not say %q", said, w)
					}
				}
				if strings.Contains(said, "PRIVATE KEY") || strings.Contains(said, string(ca.KeyPEM(t)[40:80])) {
					t.Errorf("refusal %q shows the key", said)
				}
			}
		})
	}
}

// ctxOutcome is the context key of the error ctxExporter returns.
type ctxOutcome struct{}

// ctxExporter is a span exporter whose export returns the error its
// context holds (ctxOutcome), so that concurrent exports differ.
type ctxExporter struct{}

func (ctxExporter) ExportSpans(ctx context.Context, _ []sdktrace.ReadOnlySpan) error {
	err, _ := ctx.Value(ctxOutcome{}).(error)
	return err
}
func (ctxExporter) Shutdown(context.Context) error { return nil }

// TestAttackTraceExportStateConcurrent (rvotlp, review of 8882b41):
// exports failing and succeeding while /readyz and /status.json read the
// state (run with -race): every reading is one export's outcome whole: a
// failure's error with its UTC time and a count since the last success
// above zero, or none of the three; that count never above the total; the
// note on one line. At the end the total is the failures made. Held on
// main.
func TestAttackTraceExportStateConcurrent(t *testing.T) {
	counter, err := noop.NewMeterProvider().Meter("test").Int64Counter(MetricTraceExportFailures)
	if err != nil {
		t.Fatal(err)
	}
	fail := context.WithValue(context.Background(), ctxOutcome{}, error(errors.New("refused\nby the collector")))
	w := &exportWatch{SpanExporter: ctxExporter{}, failures: counter, now: time.Now, state: TraceExport{Endpoint: "collector:4317"}}
	p := &Providers{export: w}
	const writers, each = 4, 300
	var failures int64
	for i := range writers {
		for j := range each {
			if (i+j)%3 != 0 {
				failures++
			}
		}
	}
	done := make(chan struct{})
	var bad []string
	var reader sync.WaitGroup
	reader.Go(func() {
		for {
			s, notes := p.TraceExport(), p.Notes()
			switch {
			case s.FailuresSinceSuccess > s.Failures:
				bad = append(bad, "more failures since the last success than in all")
			case s.LastError == "" && (s.FailuresSinceSuccess != 0 || !s.LastErrorAt.IsZero()):
				bad = append(bad, "a count or a time without an error")
			case s.LastError != "" && (s.FailuresSinceSuccess == 0 || s.LastErrorAt.IsZero() || s.LastErrorAt.Location() != time.UTC):
				bad = append(bad, "an error without its count or its UTC time")
			}
			// The note is a reading of its own (Notes reads the state again).
			for _, n := range notes {
				if strings.ContainsAny(n, "\r\n") || strings.Contains(n, "(0 failed") || strings.Contains(n, "0001-01-01") {
					bad = append(bad, "a note on more than one line, without a count or a time: "+n)
				}
			}
			select {
			case <-done:
				return
			default:
			}
		}
	})
	var writer sync.WaitGroup
	for i := range writers {
		writer.Go(func() {
			for j := range each {
				ctx := context.Background()
				if (i+j)%3 != 0 {
					ctx = fail
				}
				_ = w.ExportSpans(ctx, nil)
			}
		})
	}
	writer.Wait()
	close(done)
	reader.Wait()
	if len(bad) > 0 {
		t.Fatalf("inconsistent readings: %q", bad[:min(len(bad), 5)])
	}
	if got := p.TraceExport().Failures; got != failures {
		t.Errorf("Failures = %d; want the %d made", got, failures)
	}
}
