package safefiletest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/segmesh/segmesh/pkg/safefile/safefiletest"
)

func TestMake(t *testing.T) {
	for _, tt := range []struct {
		kind safefiletest.Kind
		want func(os.FileMode) bool // on the file the path leads to
	}{
		{safefiletest.FIFO, func(m os.FileMode) bool { return m&os.ModeNamedPipe != 0 }},
		{safefiletest.Zero, func(m os.FileMode) bool { return m&os.ModeCharDevice != 0 }},
		{safefiletest.Dir, os.FileMode.IsDir},
		{safefiletest.Large, os.FileMode.IsRegular},
	} {
		t.Run(string(tt.kind), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			unblock := safefiletest.Make(t, tt.kind, p)
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(fi.Mode()) {
				t.Errorf("%s: mode %v", tt.kind, fi.Mode())
			}
			unblock() // no reader: returns after trying (a FIFO) or at once
		})
	}
	if got := len(safefiletest.Kinds()); got != 3 {
		t.Errorf("Kinds() has %d kinds, want 3", got)
	}
}

func TestSparse(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	safefiletest.Sparse(t, p, 64<<20)
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != 64<<20 {
		t.Fatalf("Sparse made %v, %v; want a regular file of 64 MiB", fi, err)
	}
}

func TestWithinReturnsWhenFReturns(t *testing.T) {
	ran := false
	safefiletest.Within(t, "a quick read", nil, func() { ran = true })
	if !ran {
		t.Fatal("Within returned before f ran")
	}
}

func TestTreeMake(t *testing.T) {
	for _, tt := range []struct {
		name              string
		tree              safefiletest.Tree
		file, dir, parent os.FileMode // the modes wanted
	}{
		{"defaults", safefiletest.Tree{}, 0o600, 0o700, 0o755},
		{"modes", safefiletest.Tree{File: 0o646, Dir: 0o777 | os.ModeSticky, Parent: 0o775}, 0o646, 0o777 | os.ModeSticky, 0o775},
		// Given after the owner (chown clears set-id bits); skipped unless root.
		{"owners and modes", safefiletest.Tree{File: 0o644, Dir: 0o775 | os.ModeSetgid, FileOwner: 54321, DirOwner: 54321}, 0o644, 0o775 | os.ModeSetgid, 0o755},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.tree.Make(t, "d", "f", []byte("x"))
			for path, want := range map[string]os.FileMode{p: tt.file, filepath.Dir(p): tt.dir, filepath.Dir(filepath.Dir(p)): tt.parent} {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode() & (os.ModePerm | os.ModeSticky | os.ModeSetgid); got != want {
					t.Errorf("%s has mode %v; want %v", path, got, want)
				}
			}
			if b, err := os.ReadFile(p); err != nil || string(b) != "x" {
				t.Errorf("content = %q, %v; want %q", b, err, "x")
			}
		})
	}
}
