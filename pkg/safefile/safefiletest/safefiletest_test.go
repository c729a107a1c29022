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
