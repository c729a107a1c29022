package suite

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// fakeApplier is a role group whose crl role applies
// segmesh.crl.failClosedOnStale live.
type fakeApplier struct {
	mu      sync.Mutex
	applied []*config.Config
	fail    error
}

func (f *fakeApplier) LiveKeys() map[string][]string {
	return map[string][]string{"crl": {"segmesh.crl.failClosedOnStale"}}
}

func (f *fakeApplier) ApplyConfig(_ context.Context, next *config.Config, changed []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	if slices.Contains(changed, "segmesh.crl.failClosedOnStale") {
		f.applied = append(f.applied, next)
	}
	return nil
}

func writeJSON(tb testing.TB, path string, v any) {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// reloadConfig is a config.json for a crl-only process.
func reloadConfig(level string, failClosed bool, stateDir, grpcListen string) map[string]any {
	return map[string]any{"segmesh": map[string]any{
		"telemetry": map[string]any{"logLevel": level},
		"crl":       map[string]any{"failClosedOnStale": failClosed, "stateDir": stateDir},
		"grpc":      map[string]any{"listen": grpcListen},
	}}
}

func newTestReloader(t *testing.T, g applier) (*reloader, string, *slog.LevelVar, *syncBuffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	writeJSON(t, path, reloadConfig("info", false, "", ""))
	cfg, _, err := LoadForRun(path, []string{"crl"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	level := new(slog.LevelVar)
	prov, err := telemetry.Setup(context.Background(), telemetry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prov.Shutdown(context.Background()) })
	r, err := newReloader(path, []string{"crl"}, cfg, []config.Problem{{Severity: config.SeverityWarning, Key: "boot.only"}}, slog.New(slog.NewTextHandler(&logs, nil)), level, g, nil, prov.Meter.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	return r, path, level, &logs
}

// TestReloadAppliesRefusesAndNames edits config.json step by step and
// checks what each reload applies, refuses and names as waiting for a
// restart.
func TestReloadAppliesRefusesAndNames(t *testing.T) {
	g := &fakeApplier{}
	r, path, level, logs := newTestReloader(t, g)
	ctx := context.Background()
	hasBootNote := func() bool {
		return slices.ContainsFunc(r.Problems(), func(p config.Problem) bool { return p.Key == "boot.only" })
	}
	if !hasBootNote() {
		t.Fatalf("the start's warnings are not on /status: %+v", r.Problems())
	}
	steps := []struct {
		name        string
		file        string // raw config.json; empty: reloadConfig of the fields below
		cfg         map[string]any
		wantErr     bool
		wantApplied []string
		wantPending []string
		wantLevel   slog.Level
		wantApplies int // ApplyConfig calls for the crl key so far
		wantRefused string
	}{
		{name: "log level and a live role setting", cfg: reloadConfig("debug", true, "", ""),
			wantApplied: []string{"segmesh.telemetry.logLevel", "segmesh.crl.failClosedOnStale"}, wantLevel: slog.LevelDebug, wantApplies: 1},
		{name: "malformed JSON is refused whole", file: `{"segmesh": {"telemetry": {"logLevel": "warn"}`,
			wantErr: true, wantLevel: slog.LevelDebug, wantApplies: 1, wantRefused: "(file)"},
		{name: "a Load error is refused and the log level stays", cfg: reloadConfig("loud", false, "", ""),
			wantErr: true, wantLevel: slog.LevelDebug, wantApplies: 1, wantRefused: "segmesh.telemetry.logLevel"},
		{name: "a setting no role applies live and a listen address are named", cfg: reloadConfig("debug", true, "/var/lib/other", "127.0.0.1:1"),
			wantPending: []string{"segmesh.grpc.listen", "segmesh.crl.stateDir"}, wantLevel: slog.LevelDebug, wantApplies: 1},
		{name: "putting them back clears the pending list", cfg: reloadConfig("warn", true, "", ""),
			wantApplied: []string{"segmesh.telemetry.logLevel"}, wantLevel: slog.LevelWarn, wantApplies: 1},
	}
	for _, s := range steps {
		if s.file != "" {
			if err := os.WriteFile(path, []byte(s.file), 0o600); err != nil {
				t.Fatal(err)
			}
		} else {
			writeJSON(t, path, s.cfg)
		}
		err := r.Reload(ctx, "SIGHUP")
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: Reload = %v, want error %v\n%s", s.name, err, s.wantErr, logs)
		}
		st := r.Status()
		if !s.wantErr && !sameSet(st.Applied, s.wantApplied) {
			t.Errorf("%s: applied %v, want %v", s.name, st.Applied, s.wantApplied)
		}
		if !s.wantErr && !sameSet(st.RestartPending, s.wantPending) {
			t.Errorf("%s: restart pending %v, want %v", s.name, st.RestartPending, s.wantPending)
		}
		if got := level.Level(); got != s.wantLevel {
			t.Errorf("%s: log level %v, want %v", s.name, got, s.wantLevel)
		}
		if len(g.applied) != s.wantApplies {
			t.Errorf("%s: ApplyConfig called %d times for the crl setting, want %d", s.name, len(g.applied), s.wantApplies)
		}
		notes := strings.Join(r.Notes(), "\n")
		switch {
		case s.wantRefused != "":
			if len(st.Refused) == 0 || st.Refused[0].Key != s.wantRefused {
				t.Errorf("%s: refused %+v, want a problem on %s", s.name, st.Refused, s.wantRefused)
			}
			if !strings.Contains(notes, "reload refused") || !strings.Contains(notes, s.wantRefused) {
				t.Errorf("%s: /readyz notes do not say the reload was refused:\n%s", s.name, notes)
			}
			if !slices.ContainsFunc(r.Problems(), func(p config.Problem) bool {
				return p.Severity == config.SeverityError && strings.Contains(p.Message, "stays in use")
			}) {
				t.Errorf("%s: /status problems do not show the refusal: %+v", s.name, r.Problems())
			}
		case len(st.Refused) > 0 || strings.Contains(notes, "refused"):
			t.Errorf("%s: still refused after a good reload: %+v %s", s.name, st.Refused, notes)
		}
		for _, k := range s.wantPending {
			if !strings.Contains(notes, k) {
				t.Errorf("%s: /readyz notes do not name %s:\n%s", s.name, k, notes)
			}
		}
	}
	if hasBootNote() {
		t.Error("/status still shows the start's warnings after a reload applied another file")
	}
	if !g.applied[0].Segmesh.CRL.FailClosedOnStale {
		t.Error("the role was given the old configuration")
	}
}

// TestReloadKeepsOldWhenARoleCannotApply: a role's ApplyConfig error is a
// refusal like a broken file.
func TestReloadKeepsOldWhenARoleCannotApply(t *testing.T) {
	g := &fakeApplier{fail: io.ErrUnexpectedEOF}
	r, path, level, _ := newTestReloader(t, g)
	writeJSON(t, path, reloadConfig("debug", true, "", ""))
	if err := r.Reload(context.Background(), "SIGHUP"); err == nil {
		t.Fatal("Reload succeeded though the role failed")
	}
	if level.Level() != slog.LevelInfo {
		t.Errorf("log level %v changed by a refused reload", level.Level())
	}
	if st := r.Status(); len(st.Refused) == 0 || !strings.Contains(st.Refused[0].Message, io.ErrUnexpectedEOF.Error()) {
		t.Errorf("refused = %+v, want the role's error", st.Refused)
	}
}

// TestReloadPollSeesMountedSecretSwap replaces a file config.json names the
// way Kubernetes updates a mounted Secret (a new ..data directory and a
// symlink swap) and checks Poll reloads, once.
func TestReloadPollSeesMountedSecretSwap(t *testing.T) {
	dir := t.TempDir()
	mount := filepath.Join(dir, "mount")
	for _, d := range []string{"v1", "v2"} {
		if err := os.MkdirAll(filepath.Join(mount, d), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mount, d, "token"), []byte("token-"+d), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("v1", filepath.Join(mount, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/token", filepath.Join(mount, "token")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	cfg := reloadConfig("info", false, "", "")
	cfg["segmesh"].(map[string]any)["admin"] = map[string]any{"tokenFile": filepath.Join(mount, "token")}
	writeJSON(t, path, cfg)
	r, logs, prov := crlReloader(t, path, new(slog.LevelVar), nil)
	ctx := context.Background()
	r.Poll(ctx)
	if st := r.Status(); !st.LastAttempt.IsZero() {
		t.Fatalf("Poll reloaded with nothing changed: %+v", st)
	}
	tmp := filepath.Join(mount, "..data_tmp")
	if err := os.Symlink("v2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(mount, "..data")); err != nil {
		t.Fatal(err)
	}
	r.Poll(ctx)
	first := r.Status().LastAttempt
	if first.IsZero() || r.Status().Trigger != "file change" {
		t.Fatalf("Poll did not reload after the ..data swap: %+v\n%s", r.Status(), logs.String())
	}
	r.Poll(ctx)
	if r.Status().LastAttempt != first {
		t.Error("Poll reloaded twice for one change")
	}
	// The metrics are exported under their catalogue names.
	rec := httptest.NewRecorder()
	prov.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`segmesh_config_reloads_total{result="applied"} 1`,
		"segmesh_config_reload_refused", "segmesh_config_last_reload_success_timestamp_seconds", "segmesh_config_restart_pending"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(rec.Body.String(), "segmesh_config"))
		}
	}
}

func sameSet(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(s string) bool { return !slices.Contains(b, s) })
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestReloadCountersStartAtZero: segmesh_config_reloads_total exists for
// both results from the start, at 0, so the dashboard's increase() and an
// alert on refusals see the first reload (a counter series born at 1 loses
// its first increment in Prometheus's rate and increase). Failed in the CI
// rehearsal: the dashboard's "Configuration reloads" panel had no data on a
// gateway that had not reloaded yet (deploy/monitoring TestLabPrometheus).
func TestReloadCountersStartAtZero(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	writeJSON(t, path, reloadConfig("info", false, "", ""))
	_, _, prov := crlReloader(t, path, new(slog.LevelVar), nil)
	rec := httptest.NewRecorder()
	prov.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`segmesh_config_reloads_total{result="applied"} 0`, `segmesh_config_reloads_total{result="refused"} 0`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s before any reload:\n%s", want, grepLines(rec.Body.String(), "segmesh_config"))
		}
	}
}
