package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

// TestAttackLinkOnTheWayInAWritableDirectory (session 9's rvconf): the
// trust store is named /etc/segmesh/certs/ca.pem, certs is a link to a
// link "hop" in a directory others may write, hop leads to a directory of
// root's. The resolved path and the named one go through safe directories
// only; whoever writes hop's directory points hop at a directory of theirs
// and the gateway trusts their CA. On isafe2's first CheckReplaceable the
// walk followed only the last name's links: every row but the last was
// accepted.
func TestAttackLinkOnTheWayInAWritableDirectory(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes and owners are not checked on Windows")
	}
	for _, tt := range []struct {
		name string
		make layout
		want string // "" accepted; else in the error
	}{
		{"a directory link to an absolute link in a 0777 directory", func(t testing.TB, root string) string {
			mkfile(t, filepath.Join(root, "opt", "certs", "ca.pem"), 0o644)
			mkdirMode(t, filepath.Join(root, "open"), 0o777)
			link(t, filepath.Join(root, "opt", "certs"), filepath.Join(root, "open", "hop"))
			mkdirMode(t, filepath.Join(root, "etc"), 0o755)
			link(t, filepath.Join(root, "open", "hop"), filepath.Join(root, "etc", "certs"))
			return filepath.Join(root, "etc", "certs", "ca.pem")
		}, "(the directory holding "},
		{"a relative directory link through ..", func(t testing.TB, root string) string {
			mkfile(t, filepath.Join(root, "opt", "certs", "ca.pem"), 0o644)
			mkdirMode(t, filepath.Join(root, "open"), 0o777)
			link(t, "../opt/certs", filepath.Join(root, "open", "hop"))
			mkdirMode(t, filepath.Join(root, "etc"), 0o755)
			link(t, "../open/hop", filepath.Join(root, "etc", "certs"))
			return filepath.Join(root, "etc", "certs", "ca.pem")
		}, "has mode 0777"},
		{"a group-writable directory two links down", func(t testing.TB, root string) string {
			mkfile(t, filepath.Join(root, "opt", "certs", "ca.pem"), 0o644)
			mkdirMode(t, filepath.Join(root, "srv", "shared"), 0o775)
			link(t, filepath.Join(root, "opt"), filepath.Join(root, "srv", "shared", "hop"))
			mkdirMode(t, filepath.Join(root, "etc"), 0o755)
			link(t, filepath.Join(root, "srv", "shared", "hop", "certs"), filepath.Join(root, "etc", "certs"))
			return filepath.Join(root, "etc", "certs", "ca.pem")
		}, "has mode 0775"},
		{"the same links all in safe directories", func(t testing.TB, root string) string {
			mkfile(t, filepath.Join(root, "opt", "certs", "ca.pem"), 0o644)
			mkdirMode(t, filepath.Join(root, "closed"), 0o755)
			link(t, "../opt/certs", filepath.Join(root, "closed", "hop"))
			mkdirMode(t, filepath.Join(root, "etc"), 0o755)
			link(t, "../closed/hop", filepath.Join(root, "etc", "certs"))
			return filepath.Join(root, "etc", "certs", "ca.pem")
		}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.make(t, attackRoot(t))
			_, err := ReadTrusted(p, 1<<10)
			checkVerdict(t, err, tt.want)
		})
	}
	// Between the open and the check, the link on the way was removed: the
	// directory that held it is still checked.
	t.Run("the hop gone after the open", func(t *testing.T) {
		root := attackRoot(t)
		mkdirMode(t, filepath.Join(root, "open"), 0o777)
		mkdirMode(t, filepath.Join(root, "etc"), 0o755)
		link(t, filepath.Join(root, "open", "hop"), filepath.Join(root, "etc", "certs"))
		hop := filepath.Join(root, "open", "hop")
		links, real := walkLinks(filepath.Join(root, "etc", "certs", "ca.pem"))
		if real != "" || len(links) != 2 || links[1] != hop {
			t.Fatalf("walkLinks = %q, %q; want the gone hop among the links and no resolved path", links, real)
		}
		if err := checkChain(hop, "ca.pem", hop, map[string]bool{}); err == nil || !strings.Contains(err.Error(), "has mode 0777") {
			t.Fatalf("checkChain(hop) = %v; want its 0777 directory refused", err)
		}
	})
}

// TestAttackReadOnlyMountOfAWritableFile (session 9's rvconf): a read-only
// mount is a property of the mount, not of the file: `mount --bind -o ro`
// or docker's -v /srv/certs:/etc/segmesh/certs:ro shows a file others may
// write, through its source, on a read-only mount. Checked with a real
// bind mount (unshare -m, as root): a 0666 file owned by nobody, in a 0777
// directory, passed ReadTrusted through the read-only mount and was
// refused through its source. The file's mode and owner and the
// directory's owner are checked on a read-only mount too; only a
// directory's mode is not (kubelet's volumes are an emptyDir of 0777).
func TestAttackReadOnlyMountOfAWritableFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes and owners are not checked on Windows")
	}
	for _, tt := range []struct {
		name    string
		file    os.FileMode
		dir     os.FileMode
		fileUID int // -1: the test's user
		dirUID  int
		want    string
	}{
		{"a 0666 file", 0o666, 0o755, -1, -1, "has mode 0666"},
		{"a 0664 file in a 0777 directory", 0o664, 0o777, -1, -1, "has mode 0664"},
		{"a 0644 file another user owns", 0o644, 0o755, 54321, -1, "is owned by user 54321"},
		{"a directory another user owns", 0o644, 0o755, -1, 54321, "is owned by user 54321"},
		{"kubelet's: 0444 files in a 0777 directory of root's", 0o444, 0o777 | os.ModeSetgid, -1, -1, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := safefiletest.Tree{File: tt.file, Dir: tt.dir, FileOwner: max(tt.fileUID, 0), DirOwner: max(tt.dirUID, 0)}.Make(t, "certs", "ca.pem", []byte("-----BEGIN CERTIFICATE-----\n"))
			vol := filepath.Dir(p)
			old, oldEUID := readOnlyFS, euid
			readOnlyFS = func(path string) bool { return path == vol || strings.HasPrefix(path, vol+string(filepath.Separator)) }
			euid = func() int { return 4242 } // the service's user, not root: owners are checked
			t.Cleanup(func() { readOnlyFS, euid = old, oldEUID })
			if tt.fileUID < 0 {
				_ = os.Chown(p, 0, -1)
			}
			if tt.dirUID < 0 {
				_ = os.Chown(vol, 0, -1)
			}
			_, err := ReadTrusted(p, 1<<10)
			checkVerdict(t, err, tt.want)
		})
	}
}

// attackRoot returns a fresh 0755 directory whose tree the cleanup gives
// back to the test for removal.
func attackRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "r")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.IsDir() {
				_ = os.Chmod(p, 0o700)
			}
			return nil
		})
	})
	return root
}

// mkdirMode makes the directory path (and its parents) and sets its mode.
func mkdirMode(t testing.TB, path string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(path, 0o700); err != nil {
		t.Fatal(err)
	}
	chmodT(t, path, mode)
}

// checkVerdict fails t unless err is nil for want "", or an *ExposedError
// holding want.
func checkVerdict(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("refused: %v; want accepted", err)
		}
		return
	}
	var e *ExposedError
	if !errors.As(err, &e) || !strings.Contains(e.Error(), want) {
		t.Fatalf("got %v; want an *ExposedError holding %q", err, want)
	}
}

// TestAttackHardLinkToAnotherUsersFile (session 9's rvconf, held): a hard
// link in segmesh's own 0755 directory to a 0644 file another user owns
// (made by root, or by that user where protected_hardlinks is off). The
// link's directory is safe, but the inode is theirs: they rewrite it in
// place. CheckReplaceable judges the opened file's owner, so it is refused.
func TestAttackHardLinkToAnotherUsersFile(t *testing.T) {
	if runtime.GOOS == "windows" || os.Geteuid() != 0 {
		t.Skip("giving a file another owner needs root (and modes)")
	}
	root := attackRoot(t)
	theirs := mkfile(t, filepath.Join(root, "home", "mallory", "ca.pem"), 0o644)
	if err := os.Chown(theirs, 54321, -1); err != nil {
		t.Fatal(err)
	}
	mkdirMode(t, filepath.Join(root, "etc", "segmesh"), 0o755)
	p := filepath.Join(root, "etc", "segmesh", "ca.pem")
	if err := os.Link(theirs, p); err != nil {
		t.Fatal(err)
	}
	old := euid
	euid = func() int { return 4242 }
	t.Cleanup(func() { euid = old })
	_, err := ReadTrusted(p, 1<<10)
	checkVerdict(t, err, "is owned by user 54321")
}
