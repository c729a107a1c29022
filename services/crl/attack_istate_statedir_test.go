package crl

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// TestAttackStateDirOthersMayWrite: the state directory keeps the floors
// (the newest CRL ever seen per issuer and partition) and the last good
// CRLs across restarts. Whoever else may write it, or a directory above
// it, deletes a floor or plants an older CRL's record, and after the next
// restart a revoked certificate is good again. Validate, which `segmesh
// run` (before any role starts), every reload and `config check` run,
// refuses such a directory, naming segmesh.crl.stateDir, the path, the
// mode and the chmod that fixes it. On main every refusal row was
// accepted (Validate returned no problem on segmesh.crl.stateDir). A
// directory group-writable by a group the process is in (Kubernetes'
// fsGroup makes every directory of a volume g+rwx) passes; owners are
// tested in pkg/safefile (TestCheckDirOwners), as giving a file another
// owner needs root, which checks modes only.
func TestAttackStateDirOthersMayWrite(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes are not checked on Windows")
	}
	const otherGroup = 54321
	for _, tc := range []struct {
		name string
		// make builds the tree under root and returns the state directory.
		make func(t *testing.T, root string) string
		want string // "" accepted; else in the problem's message
		fix  string
	}{
		{"0700: the role's own", treeDir(safefiletest.Tree{}), "", ""},
		{"0750: systemd's StateDirectoryMode", treeDir(safefiletest.Tree{Dir: 0o750}), "", ""},
		{"not created yet below 0755", func(t *testing.T, root string) string {
			mkdirMode(t, filepath.Join(root, "var", "segmesh"), 0o755)
			return filepath.Join(root, "var", "segmesh", "crl-cache")
		}, "", ""},
		{"ours in a sticky world-writable directory", treeDir(safefiletest.Tree{Parent: 0o777 | os.ModeSticky}), "", ""},
		{"group-writable by the process's own group (fsGroup)", func(t *testing.T, root string) string {
			d := mkdirMode(t, filepath.Join(root, "crl-cache"), 0o770|os.ModeSetgid)
			chownT(t, d, os.Getegid())
			writeMode(t, filepath.Join(d, "x.crl"), 0o664)
			return d
		}, "", ""},
		{"others may write it", treeDir(safefiletest.Tree{Dir: 0o777}), "has mode 0777", "chmod go-w"},
		{"others may write it (sticky)", treeDir(safefiletest.Tree{Dir: 0o777 | os.ModeSticky}), "has mode 1777", "chmod go-w"},
		{"a group the process is not in may write it", func(t *testing.T, root string) string {
			d := mkdirMode(t, filepath.Join(root, "crl-cache"), 0o770)
			chownT(t, d, otherGroup)
			return d
		}, "has mode 0770", "chmod go-w"},
		{"others may write a directory above it", treeDir(safefiletest.Tree{Parent: 0o777}), "has mode 0777", "chmod go-w"},
		{"not created yet below a world-writable directory", func(t *testing.T, root string) string {
			mkdirMode(t, filepath.Join(root, "srv"), 0o777)
			return filepath.Join(root, "srv", "crl-cache")
		}, "has mode 0777", "chmod go-w"},
		{"not created yet in a sticky directory: another user creates it first", func(t *testing.T, root string) string {
			mkdirMode(t, filepath.Join(root, "tmp"), 0o777|os.ModeSticky)
			return filepath.Join(root, "tmp", "crl-cache")
		}, "could create it first", "mkdir -m 0700"},
		{"others may write a record in it", treeDir(safefiletest.Tree{File: 0o666}), "has mode 0666", "chmod go-w"},
		{"others may write kept/", func(t *testing.T, root string) string {
			d := mkdirMode(t, filepath.Join(root, "crl-cache"), 0o700)
			mkdirMode(t, filepath.Join(d, "kept"), 0o777)
			return d
		}, "has mode 0777", "chmod go-w"},
		{"a file not a directory", func(t *testing.T, root string) string {
			p := filepath.Join(root, "crl-cache")
			writeMode(t, p, 0o600)
			return p
		}, "not a directory", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := tc.make(t, root)
			t.Cleanup(func() { restoreModes(root) })
			got := stateDirFindings(stateDirConfig(t, root, dir))
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("Validate = %v; want the state directory accepted", got)
				}
				return
			}
			if len(got) != 1 || got[0].Severity != config.SeverityError || got[0].Value != dir ||
				!strings.Contains(got[0].Message, tc.want) || !strings.Contains(got[0].Fix, tc.fix) {
				t.Fatalf("Validate = %v; want one error on %s = %q saying %q, fix %q", got, KeyStateDir, dir, tc.want, tc.fix)
			}
		})
	}
}

// treeDir returns a row's builder of the state directory tr makes
// (safefiletest.Tree: a record in it, in a parent), outside root.
func treeDir(tr safefiletest.Tree) func(*testing.T, string) string {
	return func(t *testing.T, _ string) string {
		return filepath.Dir(tr.Make(t, "crl-cache", "0123.crl", nil))
	}
}

// stateDirConfig returns a configuration with revocation checking on, a
// valid trust store (beside root, so its checks pass) and the state
// directory dir.
func stateDirConfig(t *testing.T, root, dir string) *config.Config {
	t.Helper()
	etc := mkdirMode(t, filepath.Join(root, "etc"), 0o700)
	ca := filepath.Join(etc, "ca.pem")
	if err := os.WriteFile(ca, testpki.NewCA(t, "State CA").PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.RequireClientCertificate, c.Gateway.RevocationEnabled = true, true
	c.Gateway.CRLURIs = []string{"http://pki.corp.example/ca.crl"}
	c.ClientCertTrustStorePath = ca
	c.Segmesh.CRL.StateDir = dir
	return &c
}

// mkdirMode makes path (and its parents, 0700) and sets its mode.
func mkdirMode(t *testing.T, path string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeMode writes a file at path with mode.
func writeMode(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// chownT gives path the group gid; the test is skipped where the process
// may not (not root).
func chownT(t *testing.T, path string, gid int) {
	t.Helper()
	if err := os.Chown(path, -1, gid); err != nil {
		t.Skipf("chown: %v", err)
	}
}

// restoreModes makes every directory under root 0700 again, so that the
// test's cleanup can remove the tree.
func restoreModes(root string) {
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
}
