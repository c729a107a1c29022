package crl

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
)

// TestAttackStateDirSettingResolved (rvstate, review of istate's
// Validate): the directory Validate checks must be the one the store
// writes. A relative setting is resolved against config.json's directory
// (Config.Resolve), not the process's working directory: one in a
// directory others may write is refused wherever `config check` runs
// (held on main). An absolute setting naming ".." after a symbolic link
// is resolved by the kernel at the link's target, in a directory others
// may write, while the directories above were judged on the cleaned text:
// accepted on main, refused now with a fix naming the clean path.
func TestAttackStateDirSettingResolved(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes are not checked on Windows")
	}
	for _, tc := range []struct {
		name string
		// make builds the tree under root and returns the setting and
		// config.json's directory.
		make      func(t *testing.T, root string) (setting, base string)
		want, fix string
	}{
		{"relative, config.json in a directory others may write", func(t *testing.T, root string) (string, string) {
			base := mkdirMode(t, filepath.Join(root, "open"), 0o777)
			mkdirMode(t, filepath.Join(base, "crl-cache"), 0o700)
			return "crl-cache", base
		}, "has mode 0777", "chmod go-w"},
		{"relative, config.json in its own directory", func(t *testing.T, root string) (string, string) {
			return "crl-cache", mkdirMode(t, filepath.Join(root, "etc-segmesh"), 0o750)
		}, "", ""},
		{"'..' after a link into a directory others may write", func(t *testing.T, root string) (string, string) {
			open := mkdirMode(t, filepath.Join(root, "open"), 0o777)
			mkdirMode(t, filepath.Join(open, "sub"), 0o700)
			mkdirMode(t, filepath.Join(open, "state"), 0o700)
			if err := os.Symlink(filepath.Join(open, "sub"), filepath.Join(root, "link")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(root, "link") + "/../state", mkdirMode(t, filepath.Join(root, "etc-segmesh"), 0o750)
		}, `names ".."`, "name the directory without"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			t.Cleanup(func() { restoreModes(root) })
			setting, base := tc.make(t, root)
			c := stateDirConfig(t, root, setting)
			c.BaseDir = base
			got := stateDirFindings(c)
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("Validate = %v; want the state directory accepted", got)
				}
				return
			}
			if len(got) != 1 || got[0].Severity != config.SeverityError || !strings.Contains(got[0].Message, tc.want) || !strings.Contains(got[0].Fix, tc.fix) {
				t.Fatalf("Validate = %v; want one error on %s saying %q, fix %q", got, KeyStateDir, tc.want, tc.fix)
			}
			t.Logf("%s: %s (fix: %s)", got[0].Value, got[0].Message, got[0].Fix)
		})
	}
}

// stateDirFindings returns Validate's problems on segmesh.crl.stateDir.
func stateDirFindings(c *config.Config) []config.Problem {
	var out []config.Problem
	for _, p := range Validate(c) {
		if p.Key == KeyStateDir {
			out = append(out, p)
		}
	}
	return out
}
