package suite

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
)

// TestReloadRefusesASaveARestartRefuses: a save whose file a restart would
// refuse (segmesh.admin.tokenFile naming a missing or empty file; the gRPC
// mTLS files naming a key that does not match the certificate) is refused
// by the reload, with the error the start gives, instead of being accepted
// as "waiting for a restart" and found at the next reboot. The same file is
// refused by the start's checks (Validate). On main the reload accepted all
// three and named the setting as waiting for a restart.
func TestReloadRefusesASaveARestartRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, key, want string
		edit            func(t *testing.T, dir string, cfg map[string]any)
	}{
		{"the admin token file is missing", "segmesh.admin.tokenFile", "segmesh.admin.tokenFile",
			func(_ *testing.T, dir string, cfg map[string]any) {
				cfg["segmesh"].(map[string]any)["admin"] = map[string]any{"tokenFile": filepath.Join(dir, "missing-token")}
			}},
		{"the admin token file is empty", "segmesh.admin.tokenFile", "holds no token",
			func(t *testing.T, dir string, cfg map[string]any) {
				p := filepath.Join(dir, "empty-token")
				if err := os.WriteFile(p, []byte("\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				cfg["segmesh"].(map[string]any)["admin"] = map[string]any{"tokenFile": p}
			}},
		{"the gRPC key does not match its certificate", "segmesh.grpc.certFile", "segmesh.grpc",
			func(t *testing.T, dir string, cfg map[string]any) {
				ca := testpki.NewCA(t, "Role CA")
				cert, _ := ca.Server(t, []string{"127.0.0.1"}).WriteFiles(t, dir, "one")
				_, key := ca.Server(t, []string{"127.0.0.1"}).WriteFiles(t, dir, "two")
				caFile := filepath.Join(dir, "role-ca.pem")
				if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
					t.Fatal(err)
				}
				cfg["segmesh"].(map[string]any)["grpc"] = map[string]any{"listen": "127.0.0.1:0", "certFile": cert, "keyFile": key,
					"caFile": caFile, "allowedPeers": []string{"spiffe://segmesh/edge"}}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.json")
			writeJSON(t, path, reloadConfig("info", false, "", ""))
			r, _, _ := crlReloader(t, path, new(slog.LevelVar), nil)
			cfg := reloadConfig("info", false, "", "")
			tc.edit(t, dir, cfg)
			writeJSON(t, path, cfg)
			next, report, err := LoadForRun(path, []string{"crl"}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatalf("config.Load refuses the file itself: %v", err)
			}
			start := Validate(next, report, []string{"crl"})
			if !slices.ContainsFunc(start, func(p config.Problem) bool { return p.Key == tc.key && p.Severity == config.SeverityError }) {
				t.Errorf("the start's checks %+v do not refuse %s", start, tc.key)
			}
			err = r.Reload(context.Background(), "SIGHUP")
			st := r.Status()
			if err == nil {
				t.Fatalf("applied %v, pending %v: a save a restart refuses was accepted", st.Applied, st.RestartPending)
			}
			if !slices.ContainsFunc(st.Refused, func(p config.Problem) bool {
				return p.Key == tc.key && strings.Contains(p.Message+" "+p.Fix, tc.want)
			}) {
				t.Errorf("refused %+v, want a refusal of %s saying %q", st.Refused, tc.key, tc.want)
			}
		})
	}
}
