package safefiletest

import (
	"os"
	"path/filepath"
	"testing"
)

// Tree is a file others may (or may not) read or replace: a file in a
// directory of its own, in a parent directory, each with a mode and an
// owner. The attack tests of pkg/safefile and of its callers (pkg/config,
// pkg/rpc, services/edge) build these to show what CheckPrivate and
// CheckReplaceable refuse; they are built once here.
type Tree struct {
	// File is the file's mode; zero means 0600.
	File os.FileMode
	// Dir is the mode of the directory holding the file; zero means 0700.
	Dir os.FileMode
	// Parent is the mode of the directory above Dir; zero means 0755.
	Parent os.FileMode
	// FileOwner, DirOwner and ParentOwner are the uids the three are given;
	// zero leaves the test's own user (giving another needs root: the test
	// is skipped otherwise).
	FileOwner, DirOwner, ParentOwner int
}

// Make writes content to <a fresh parent>/<dir>/<name> with t's modes and
// owners and returns the file's path (filepath.Dir of it is the directory,
// and the one above that the parent). The directories are given back mode
// 0700 at the test's end, so that its cleanup can remove them.
func (t Tree) Make(tb testing.TB, dir, name string, content []byte) string {
	tb.Helper()
	if (t.FileOwner != 0 || t.DirOwner != 0 || t.ParentOwner != 0) && os.Geteuid() != 0 {
		tb.Skip("giving a file another owner needs root")
	}
	parent := filepath.Join(tb.TempDir(), "parent")
	d := filepath.Join(parent, dir)
	if err := os.MkdirAll(d, 0o700); err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(d, name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.Chmod(d, 0o700); _ = os.Chmod(parent, 0o700) })
	for _, e := range []struct {
		path  string
		mode  os.FileMode
		def   os.FileMode
		owner int
	}{{p, t.File, 0o600, t.FileOwner}, {d, t.Dir, 0o700, t.DirOwner}, {parent, t.Parent, 0o755, t.ParentOwner}} {
		if e.owner != 0 {
			if err := os.Chown(e.path, e.owner, -1); err != nil {
				tb.Fatal(err)
			}
		}
		mode := e.mode
		if mode == 0 {
			mode = e.def
		}
		if err := os.Chmod(e.path, mode); err != nil {
			tb.Fatal(err)
		}
	}
	return p
}
