package suite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// TestAttackAdminTokenFileExposed: whoever reads segmesh.admin.tokenFile
// holds the admin port (/status with what it shows, the pprof profiles,
// every endpoint the token guards). A token file other local users may
// read, or replace (its directory writable by them), was accepted by the
// start, a reload and `config check` alike (rvconf's left item 4, session
// 9); it is refused as the secrets key is (safefile.CheckPrivate), while a
// group-readable file (a Kubernetes Secret with fsGroup) still passes.
func TestAttackAdminTokenFileExposed(t *testing.T) {
	cases := []struct {
		name            string
		fileMode, dirMd os.FileMode
		wantRefused     bool
	}{
		{"0600 in a 0700 directory", 0o600, 0o700, false},
		{"group-readable 0640 (a Secret with fsGroup)", 0o640, 0o750, false},
		{"world-readable 0644", 0o644, 0o755, true},
		{"group-writable 0620", 0o620, 0o755, true},
		{"0600 in a 0777 directory", 0o600, 0o777, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "admin")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			tok := filepath.Join(dir, "token")
			if err := os.WriteFile(tok, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(tok, tc.fileMode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.dirMd); err != nil {
				t.Fatal(err)
			}
			cfg := &config.Config{}
			cfg.Segmesh.Admin.TokenFile = tok
			got, err := adminToken(cfg)
			if !tc.wantRefused {
				if err != nil || got == "" {
					t.Fatalf("adminToken = %q, %v; want the token", got, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("a token file others may read or replace was accepted (%q)", got)
			}
			msg := err.Error()
			for _, want := range []string{"segmesh.admin.tokenFile", tok, "fix:"} {
				if !strings.Contains(msg, want) {
					t.Errorf("refusal %q does not name %q", msg, want)
				}
			}
			if strings.Contains(msg, "0123456789abcdef") {
				t.Errorf("refusal quotes the token: %q", msg)
			}
			// The start, a reload and config check share this verdict.
			if ps := startFileProblems(cfg); len(ps) == 0 || ps[0].Key != "segmesh.admin.tokenFile" {
				t.Errorf("startFileProblems = %+v; want the token file refused", ps)
			}
		})
	}
}
