package suite

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// TestAttackReloadEditDuringLoad edits config.json while a reload is
// reading it (after LoadForRun read the file, before the roles' Validate
// and the fingerprint: the window in which a Kubernetes ..data swap or an
// editor's second save lands). The edit must be applied by the next poll;
// it must not be marked as seen while the configuration in force is the
// one read before it (a lost edit: config.json says one thing, the process
// runs another, and nothing on /status says so).
func TestAttackReloadEditDuringLoad(t *testing.T) {
	tests := []struct {
		name    string
		during  map[string]any // written while the reload reads
		want    slog.Level     // the log level after the next poll
		pending string         // a restart-pending key the next poll must name
	}{
		{name: "a live setting", during: reloadConfig("warn", false, "", ""), want: slog.LevelWarn},
		{name: "a setting that takes a restart", during: reloadConfig("debug", false, "/var/lib/other", ""),
			want: slog.LevelDebug, pending: "segmesh.crl.stateDir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			writeJSON(t, path, reloadConfig("info", false, "", ""))
			level := new(slog.LevelVar)
			edits := 0
			// adjust runs between LoadForRun and Validate: the second edit
			// lands there, once.
			adjust := func(*config.Config) {
				if edits == 1 {
					writeJSON(t, path, tt.during)
				}
				edits++
			}
			r, logs, _ := crlReloader(t, path, level, adjust)
			edits = 1
			writeJSON(t, path, reloadConfig("debug", false, "", ""))
			ctx := context.Background()
			if err := r.Reload(ctx, "SIGHUP"); err != nil {
				t.Fatalf("Reload: %v\n%s", err, logs.String())
			}
			if got := level.Level(); got != slog.LevelDebug {
				t.Fatalf("first reload: log level %v, want the file read first (debug)", got)
			}
			r.Poll(ctx) // config.json changed after the first read
			if got := level.Level(); got != tt.want {
				t.Errorf("after the poll the log level is %v, config.json says %v: the edit made during the reload is lost\n%s",
					got, tt.want, logs.String())
			}
			if tt.pending != "" && !sameSet(r.Status().RestartPending, []string{tt.pending}) {
				t.Errorf("restart pending %v, want %s named (config.json differs from the running process)", r.Status().RestartPending, tt.pending)
			}
		})
	}
}

// TestAttackReloadFileContentNotApplied rotates the content of a file
// config.json names, its path unchanged: the admin token after a leak, as
// an operator does (echo new > token; or a Secret's ..data swap). The poll
// sees the change and reloads; the process still uses what it read at the
// start (the token is read once), so the file must be named as waiting for
// a restart on /status, /readyz and segmesh_config_restart_pending, not
// passed over as a reload that changed nothing while the leaked token keeps
// working. Putting the old content back clears it.
func TestAttackReloadFileContentNotApplied(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "admin-token")
	writeFile := func(s string) {
		t.Helper()
		if err := os.WriteFile(token, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeFile("leaked-token-0123456789\n")
	path := filepath.Join(dir, "config.json")
	cfg := reloadConfig("info", false, "", "")
	cfg["segmesh"].(map[string]any)["admin"] = map[string]any{"tokenFile": token}
	writeJSON(t, path, cfg)
	r, logs, _ := crlReloader(t, path, new(slog.LevelVar), nil)
	ctx := context.Background()
	steps := []struct {
		name        string
		content     string
		wantPending []string
	}{
		{name: "the token rotated", content: "new-token-9876543210\n", wantPending: []string{"segmesh.admin.tokenFile"}},
		{name: "the old token back", content: "leaked-token-0123456789\n"},
	}
	for _, s := range steps {
		writeFile(s.content)
		r.Poll(ctx)
		st := r.Status()
		if st.LastAttempt.IsZero() {
			t.Fatalf("%s: the poll did not reload", s.name)
		}
		if !sameSet(st.RestartPending, s.wantPending) {
			t.Errorf("%s: restart pending %v, want %v (the running process still uses the file's old content)\n%s",
				s.name, st.RestartPending, s.wantPending, logs.String())
		}
		notes := strings.Join(r.Notes(), "\n")
		for _, k := range s.wantPending {
			if !strings.Contains(notes, k) {
				t.Errorf("%s: /readyz notes do not name %s: %q", s.name, k, notes)
			}
		}
		if strings.Contains(notes+fmt.Sprint(r.Problems())+logs.String(), "token-") {
			t.Errorf("%s: the token's content shows on /readyz, /status or in the log", s.name)
		}
	}
}

// crlReloader is the reloader of a crl-only process started from the
// config.json at path, with a fakeApplier, logging into the returned
// buffer and recording its metrics in the returned providers.
func crlReloader(t *testing.T, path string, level *slog.LevelVar, adjust func(*config.Config)) (*reloader, *syncBuffer, *telemetry.Providers) {
	t.Helper()
	boot, _, err := LoadForRun(path, []string{"crl"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	prov, err := telemetry.Setup(context.Background(), telemetry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prov.Shutdown(context.Background()) })
	logs := &syncBuffer{}
	r, err := newReloader(path, []string{"crl"}, boot, nil, slog.New(slog.NewTextHandler(logs, nil)), level,
		&fakeApplier{}, adjust, prov.Meter.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	return r, logs, prov
}

// TestAttackReloadSecretScope: a reload opens the secrets of the process's
// own roles only, as the start does (LoadForRun): a crl-only process that
// reloads a config.json holding the service account's and the armor
// account's passwords holds neither afterwards, and a changed password it
// does not use is neither applied nor named as waiting for a restart.
func TestAttackReloadSecretScope(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	withSecrets := func(pw string) map[string]any {
		cfg := reloadConfig("info", false, "", "")
		cfg["kcd"] = map[string]any{"serviceAccountPassword": pw + ".plaintext"}
		cfg["segmesh"].(map[string]any)["ticket"] = map[string]any{"armorAccountUserName": "SEGGW$", "armorAccountPassword": pw + "-armor.plaintext"}
		return cfg
	}
	writeJSON(t, path, withSecrets("First-Secret-1"))
	r, logs, _ := crlReloader(t, path, new(slog.LevelVar), nil)
	writeJSON(t, path, withSecrets("Second-Secret-2"))
	if err := r.Reload(context.Background(), "SIGHUP"); err != nil {
		t.Fatalf("Reload: %v\n%s", err, logs)
	}
	r.mu.Lock()
	cur := r.cur
	r.mu.Unlock()
	if !cur.KCD.ServiceAccountPassword.IsZero() || !cur.Segmesh.Ticket.ArmorAccountPassword.IsZero() {
		t.Error("a crl-only process holds a password of the ticket role after the reload")
	}
	if st := r.Status(); len(st.RestartPending) != 0 || len(st.Applied) != 0 {
		t.Errorf("a password the process does not use: applied %v, pending %v", st.Applied, st.RestartPending)
	}
	if strings.Contains(logs.String(), "Secret-") {
		t.Errorf("the log shows a password:\n%s", logs)
	}
}
