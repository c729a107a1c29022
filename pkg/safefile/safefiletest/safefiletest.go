// Package safefiletest makes the hostile files that the readers of the
// files an admin names (pkg/safefile and its callers) are tested against,
// and runs such a read with a bound on how long it may block.
//
// Each of them hangs or exhausts a plain reader: a FIFO without a writer
// (os.Open blocks until one comes), a symbolic link to /dev/zero
// (os.ReadFile reads without end, until the process is killed for its
// memory), a directory, and a large sparse file. The attack tests of
// pkg/config, pkg/trust, pkg/rpc, services/edge, services/identity,
// internal/suite and internal/cli had each written these setups; they are
// written once here, as is Tree: a file in directories whose modes and
// owners let others read or replace it (or not), which the attack tests of
// pkg/safefile, pkg/config, pkg/rpc and services/edge each built by hand.
package safefiletest

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// Kind is one hostile file.
type Kind string

// The hostile files Make makes.
const (
	// FIFO is a named pipe with no writer.
	FIFO Kind = "a FIFO without a writer"
	// Zero is a symbolic link to /dev/zero.
	Zero Kind = "a link to /dev/zero"
	// Dir is a directory.
	Dir Kind = "a directory"
	// Large is a sparse regular file of 64 MiB, above every bound of the
	// files an admin names (not in Kinds: it is a regular file).
	Large Kind = "a 64 MiB file"
)

// Kinds returns every Kind, for a table test.
func Kinds() []Kind { return []Kind{FIFO, Zero, Dir} }

// Make makes a file of kind k at path (which must not exist) and returns
// unblock, which ends a read blocked on it: for a FIFO it opens a writer
// and closes it, so the reader sees the end of the file. The test is
// skipped where the system cannot make such a file (no FIFOs on Windows).
func Make(tb testing.TB, k Kind, path string) (unblock func()) {
	tb.Helper()
	switch k {
	case FIFO:
		if err := mkfifo(path); err != nil {
			tb.Skipf("mkfifo: %v", err)
		}
		return func() { unblockFIFO(path) }
	case Zero:
		if err := os.Symlink("/dev/zero", path); err != nil {
			tb.Skipf("symlink to /dev/zero: %v", err)
		}
		if _, err := os.Stat("/dev/zero"); err != nil {
			tb.Skipf("no /dev/zero: %v", err)
		}
	case Dir:
		if err := os.Mkdir(path, 0o700); err != nil {
			tb.Fatal(err)
		}
	case Large:
		Sparse(tb, path, 64<<20)
	default:
		tb.Fatalf("safefiletest: unknown kind %q", k)
	}
	return func() {}
}

// Sparse makes a sparse regular file of size bytes at path: large, but
// taking no disk space.
func Sparse(tb testing.TB, path string, size int64) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// blockBound is how long a read may take before Within calls it blocked.
// The reads tested take microseconds; the bound only tells a read that
// never returns from a slow machine, and is never a measure of speed.
const blockBound = 20 * time.Second

// Within runs f and fails the test when it has not returned within a
// generous bound: a read blocked on a FIFO or reading /dev/zero. It then
// calls unblock (from Make) and waits for f; an f that still does not
// return (it opened the FIFO again, or reads without end) panics the test
// binary with every stack, rather than leave it taking the machine's
// memory.
func Within(tb testing.TB, what string, unblock func(), f func()) {
	tb.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
		return
	case <-time.After(blockBound):
	}
	if unblock != nil {
		unblock()
	}
	select {
	case <-done:
		tb.Fatalf("%s blocked on a file that is not a regular file (ended only by a writer)", what)
	case <-time.After(blockBound):
		panic(fmt.Sprintf("safefiletest: %s has not returned after %v and unblocking: it blocks again or reads without end", what, 2*blockBound))
	}
}

// unblockFIFO opens the FIFO at path for writing and closes it, which ends
// a reader's blocked open or read. The open fails (ENXIO) until a reader
// has the FIFO open, so it is tried for a while.
func unblockFIFO(path string) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if w, err := openWriter(path); err == nil {
			_ = w.Close()
			return
		}
	}
}
