package suite

import (
	"context"
	"log/slog"
	"path/filepath"
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
			boot, _, err := LoadForRun(path, []string{"crl"}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			prov, err := telemetry.Setup(context.Background(), telemetry.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = prov.Shutdown(context.Background()) })
			var logs syncBuffer
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
			r, err := newReloader(path, []string{"crl"}, boot, nil, slog.New(slog.NewTextHandler(&logs, nil)), level,
				&fakeApplier{}, adjust, prov.Meter.Meter("test"))
			if err != nil {
				t.Fatal(err)
			}
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
