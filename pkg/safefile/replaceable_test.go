package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// layout builds a tree under a fresh directory and returns the path of
// the file to check.
type layout func(t testing.TB, root string) string

// mkfile writes a file at path with mode and returns path.
func mkfile(t testing.TB, path string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	chmodT(t, path, mode)
	return path
}

// chmodT sets path's mode, and gives the tree back to the test's cleanup.
func chmodT(t testing.TB, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// link makes a symbolic link at path to target.
func link(t testing.TB, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

// TestCheckReplaceable: a file the gateway trusts is refused when group or
// others may write it, or any directory above it, the one of a link on its
// way or of the file a link resolves to (without the sticky bit), and
// accepted whatever its read bits and on a read-only mount.
func TestCheckReplaceable(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes and owners are not checked on Windows")
	}
	for _, tt := range []struct {
		name     string
		make     layout
		readOnly string // a directory (relative to root) reported read-only
		want     string // "" accepted; else in the error
		fix      string
	}{
		{"0644 in 0755: others may read", func(t testing.TB, root string) string {
			return mkfile(t, filepath.Join(root, "certs", "ca.pem"), 0o644)
		}, "", "", ""},
		{"0444 in 0700", func(t testing.TB, root string) string {
			return mkfile(t, filepath.Join(root, "certs", "ca.pem"), 0o444)
		}, "", "", ""},
		{"group may write the file", func(t testing.TB, root string) string {
			return mkfile(t, filepath.Join(root, "certs", "ca.pem"), 0o664)
		}, "", "has mode 0664: group or others may write it", "chmod go-w"},
		{"others may write the file", func(t testing.TB, root string) string {
			return mkfile(t, filepath.Join(root, "certs", "ca.pem"), 0o646)
		}, "", "has mode 0646", "chmod go-w"},
		{"the directory holding it group-writable", func(t testing.TB, root string) string {
			p := mkfile(t, filepath.Join(root, "certs", "ca.pem"), 0o644)
			chmodT(t, filepath.Dir(p), 0o775)
			return p
		}, "", "(the directory holding", "chmod go-w"},
		{"a directory above it world-writable", func(t testing.TB, root string) string {
			p := mkfile(t, filepath.Join(root, "etc", "segmesh", "certs", "ca.pem"), 0o644)
			chmodT(t, filepath.Join(root, "etc"), 0o777)
			return p
		}, "", "(a directory above", "chmod go-w"},
		{"a sticky world-writable directory above it, ours", func(t testing.TB, root string) string {
			p := mkfile(t, filepath.Join(root, "tmp", "lab", "ca.pem"), 0o644)
			chmodT(t, filepath.Join(root, "tmp"), 0o777|os.ModeSticky)
			return p
		}, "", "", ""},
		{"a link in a sticky world-writable directory, another user's", func(t testing.TB, root string) string {
			if os.Geteuid() != 0 {
				t.Skip("giving a link another owner needs root")
			}
			real := mkfile(t, filepath.Join(root, "closed", "ca.pem"), 0o644)
			p := filepath.Join(root, "tmp", "ca.pem")
			if err := os.Mkdir(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			link(t, real, p)
			if err := os.Lchown(p, 54321, -1); err != nil {
				t.Fatal(err)
			}
			chmodT(t, filepath.Dir(p), 0o777|os.ModeSticky)
			return p
		}, "", "which others may write", "move the file"},
		{"a link in a 0700 directory to a file in a 0777 one", func(t testing.TB, root string) string {
			real := mkfile(t, filepath.Join(root, "open", "ca.pem"), 0o644)
			chmodT(t, filepath.Dir(real), 0o777)
			p := filepath.Join(root, "closed", "ca.pem")
			if err := os.Mkdir(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			link(t, real, p)
			return p
		}, "", "has mode 0777", "chmod go-w"},
		{"a link in a 0777 directory to a file in a 0700 one", func(t testing.TB, root string) string {
			real := mkfile(t, filepath.Join(root, "closed", "ca.pem"), 0o644)
			p := filepath.Join(root, "open", "ca.pem")
			if err := os.Mkdir(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			link(t, real, p)
			chmodT(t, filepath.Dir(p), 0o777)
			return p
		}, "", "(the directory holding", "chmod go-w"},
		{"a link through a link in a 0777 directory", func(t testing.TB, root string) string {
			real := mkfile(t, filepath.Join(root, "closed", "ca.pem"), 0o644)
			hop := filepath.Join(root, "open", "hop.pem")
			if err := os.Mkdir(filepath.Dir(hop), 0o700); err != nil {
				t.Fatal(err)
			}
			link(t, real, hop)
			chmodT(t, filepath.Dir(hop), 0o777)
			p := filepath.Join(root, "first", "ca.pem")
			if err := os.Mkdir(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			link(t, hop, p)
			return p
		}, "", "has mode 0777", "chmod go-w"},
		{"a Kubernetes volume: name -> ..data/name, ..data -> ..ts", func(t testing.TB, root string) string {
			vol := filepath.Join(root, "certs")
			mkfile(t, filepath.Join(vol, "..2026_12_06", "ca.pem"), 0o440)
			link(t, "..2026_12_06", filepath.Join(vol, "..data"))
			link(t, "..data/ca.pem", filepath.Join(vol, "ca.pem"))
			chmodT(t, vol, 0o755)
			return filepath.Join(vol, "ca.pem")
		}, "", "", ""},
		{"a Kubernetes volume mounted read-only: the emptyDir's 0777 and a 0444 file", func(t testing.TB, root string) string {
			vol := filepath.Join(root, "certs")
			mkfile(t, filepath.Join(vol, "..2026_12_06", "ca.pem"), 0o444)
			link(t, "..2026_12_06", filepath.Join(vol, "..data"))
			link(t, "..data/ca.pem", filepath.Join(vol, "ca.pem"))
			chmodT(t, filepath.Join(vol, "..2026_12_06"), 0o777|os.ModeSetgid)
			chmodT(t, vol, 0o777|os.ModeSetgid)
			return filepath.Join(vol, "ca.pem")
		}, "certs", "", ""},
		{"a read-only mount below a world-writable directory", func(t testing.TB, root string) string {
			p := mkfile(t, filepath.Join(root, "open", "certs", "ca.pem"), 0o644)
			chmodT(t, filepath.Join(root, "open"), 0o777)
			return p
		}, "open/certs", "has mode 0777", "chmod go-w"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := attackRoot(t)
			p := tt.make(t, root)
			if tt.readOnly != "" {
				ro := filepath.Join(root, tt.readOnly)
				old := readOnlyFS
				readOnlyFS = func(path string) bool { return path == ro || strings.HasPrefix(path, ro+string(filepath.Separator)) }
				t.Cleanup(func() { readOnlyFS = old })
			}
			f, fi, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			err = CheckReplaceable(p, fi)
			if _, rerr := ReadTrusted(p, 1<<10); (rerr == nil) != (err == nil) {
				t.Errorf("ReadTrusted = %v, CheckReplaceable = %v: want the same verdict", rerr, err)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckReplaceable = %v; want nil", err)
				}
				return
			}
			var e *ExposedError
			if !errors.As(err, &e) || !errors.Is(err, ErrExposed) {
				t.Fatalf("CheckReplaceable = %v; want an *ExposedError", err)
			}
			if !strings.Contains(e.Error(), tt.want) || !strings.Contains(e.Fix, tt.fix) {
				t.Fatalf("CheckReplaceable = %q (fix %q); want %q and a fix with %q", e.Error(), e.Fix, tt.want, tt.fix)
			}
		})
	}
}

// TestReadOnlyFSOf: statfs reports the test's temporary directory as
// writable, so the read-only exemption does not pass ordinary files. (A
// read-only mount is not made here: that needs root and a mount the test
// could leave behind; CheckReplaceable's exemption is tested through
// readOnlyFS.)
func TestReadOnlyFSOf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the read-only mount exemption is made on Linux only")
	}
	dir := t.TempDir()
	if readOnlyFSOf(dir) {
		t.Fatalf("readOnlyFSOf(%s) = true; the test's temporary directory is writable", dir)
	}
	if readOnlyFSOf(filepath.Join(dir, "missing")) {
		t.Fatal("readOnlyFSOf of a missing path = true; want false (statfs fails)")
	}
}
