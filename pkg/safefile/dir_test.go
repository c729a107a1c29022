package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestCheckDirOwners: a state directory, an entry in it or a directory
// above it owned by a user other than the process's and root is refused
// (that user removes a floor or plants an older CRL), unless the
// process runs as root, which trusts root and ServiceUser (`sudo
// segmesh config check` of the packages' directory), as
// CheckReplaceable does. A directory group-writable by a group the
// process is in passes (Kubernetes' fsGroup), by another group not; a
// symbolic link in it is refused. The process's user and group are set
// through euid and egid; giving files owners needs root. Every refusal
// row fails without CheckDir (there was no check of the directory).
func TestCheckDirOwners(t *testing.T) {
	if runtime.GOOS == "windows" || os.Geteuid() != 0 {
		t.Skip("giving a file another owner needs root (and modes)")
	}
	const service, other, group, otherGroup = 4242, 54321, 4343, 54545
	for _, tt := range []struct {
		name string
		proc int
		// make returns the state directory, made under root (0700,
		// owned by service:group).
		make func(t *testing.T, root string) string
		want string // "" accepted
		fix  string
	}{
		{"the service's own", service, func(t *testing.T, root string) string {
			return filepath.Join(root, "state")
		}, "", ""},
		{"root's, with a record of the service's", service, func(t *testing.T, root string) string {
			d := filepath.Join(root, "state")
			chownAll(t, d, 0, 0)
			return d
		}, "", ""},
		{"fsGroup: 2770 of the process's group, files 0664", service, func(t *testing.T, root string) string {
			d := filepath.Join(root, "state")
			chmodT(t, d, 0o770|os.ModeSetgid)
			chmodT(t, filepath.Join(d, "kept"), 0o770|os.ModeSetgid)
			chmodT(t, filepath.Join(d, "a.crl"), 0o664)
			return d
		}, "", ""},
		{"the directory another user's", service, func(t *testing.T, root string) string {
			d := filepath.Join(root, "state")
			chownAll(t, d, other, group)
			return d
		}, "is owned by user 54321", "chown 4242"},
		{"a record another user's", service, func(t *testing.T, root string) string {
			d := filepath.Join(root, "state")
			chownAll(t, filepath.Join(d, "a.crl"), other, group)
			return d
		}, "a.crl is owned by user 54321", "chown 4242"},
		{"kept/ another user's", service, func(t *testing.T, root string) string {
			d := filepath.Join(root, "state")
			chownAll(t, filepath.Join(d, "kept"), other, group)
			return d
		}, "kept is owned by user 54321", "chown 4242"},
		{"a directory above it another user's", service, func(t *testing.T, root string) string {
			if err := os.Lchown(root, other, group); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(root, "state")
		}, "is owned by user 54321", "chown 4242"},
		{"not made yet, below a directory another user's", service, func(t *testing.T, root string) string {
			chownAll(t, root, other, group)
			return filepath.Join(root, "none", "state")
		}, "is owned by user 54321", "chown 4242"},
		{"2770 of a group the process is not in", service, func(t *testing.T, root string) string {
			d := filepath.Join(root, "state")
			chownAll(t, d, service, otherGroup)
			chmodT(t, d, 0o770|os.ModeSetgid)
			return d
		}, "has mode 2770", "chmod go-w"},
		{"a record 0664 of a group the process is not in", service, func(t *testing.T, root string) string {
			d := filepath.Join(root, "state")
			chownAll(t, filepath.Join(d, "a.crl"), service, otherGroup)
			chmodT(t, filepath.Join(d, "a.crl"), 0o664)
			return d
		}, "has mode 0664", "chmod go-w"},
		{"0777 of the process's group", service, func(t *testing.T, root string) string {
			d := filepath.Join(root, "state")
			chmodT(t, d, 0o777)
			return d
		}, "has mode 0777", "chmod go-w"},
		{"a symbolic link in it", service, func(t *testing.T, root string) string {
			d := filepath.Join(root, "state")
			link(t, filepath.Join(root, "elsewhere.crl"), filepath.Join(d, "b.crl"))
			return d
		}, "is a symbolic link", "remove"},
		{"run as root: the service user's directory and records", 0, func(t *testing.T, root string) string {
			return filepath.Join(root, "state") // service is ServiceUser here
		}, "", ""},
		{"run as root: another user's directory", 0, func(t *testing.T, root string) string {
			d := filepath.Join(root, "state")
			chownAll(t, d, other, otherGroup)
			return d
		}, "is owned by user 54321", "chown root"},
		{"run as root: still not 0777", 0, func(t *testing.T, root string) string {
			d := filepath.Join(root, "state")
			chownAll(t, d, other, otherGroup)
			chmodT(t, d, 0o777)
			return d
		}, "has mode 0777", "chmod go-w"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root, _ := stateTree(t, tt.proc, service, group)
			err := CheckDir(tt.make(t, root))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckDir = %v; want nil", err)
				}
				return
			}
			e, ok := errors.AsType[*ExposedError](err)
			if !ok || !strings.Contains(e.Error(), tt.want) || !strings.Contains(e.Fix, tt.fix) {
				t.Fatalf("CheckDir = %v (fix %q); want %q and a fix saying %q", err, fixOf(err), tt.want, tt.fix)
			}
		})
	}
}

// TestCheckDirNotADirectory: a state directory named as a file, or below
// one, is refused with ErrNotDir, not read as an empty store.
func TestCheckDirNotADirectory(t *testing.T) {
	f := mkfile(t, filepath.Join(t.TempDir(), "file"), 0o600)
	for _, p := range []string{f, filepath.Join(f, "state")} {
		if err := CheckDir(p); !errors.Is(err, ErrNotDir) {
			t.Errorf("CheckDir(%s) = %v; want ErrNotDir", p, err)
		}
	}
}

// stateTree runs the test as the process proc (euid) in group (egid),
// ServiceUser being service, and makes <root>/state (0700, service:group,
// holding a.crl and kept/k.crl), root being 0700 and service's too. It
// returns root and the state directory.
func stateTree(t *testing.T, proc, service, group int) (root, d string) {
	t.Helper()
	oldU, oldG, oldS := euid, egid, serviceUID
	euid, egid = func() int { return proc }, func() int { return group }
	serviceUID = func() (int, bool) { return service, true }
	t.Cleanup(func() { euid, egid, serviceUID = oldU, oldG, oldS })
	root = filepath.Join(t.TempDir(), "var")
	d = filepath.Join(root, "state")
	for _, p := range []string{root, d, filepath.Join(d, "kept")} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mkfile(t, filepath.Join(d, "a.crl"), 0o644)
	mkfile(t, filepath.Join(d, "kept", "k.crl"), 0o644)
	chownAll(t, root, service, group)
	return root, d
}

// chownAll gives path and everything under it the owner uid and group gid.
func chownAll(t *testing.T, path string, uid, gid int) {
	t.Helper()
	err := filepath.Walk(path, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fixOf returns the Fix of an *ExposedError, for messages.
func fixOf(err error) string {
	if e, ok := errors.AsType[*ExposedError](err); ok {
		return e.Fix
	}
	return ""
}
