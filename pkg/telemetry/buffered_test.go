package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpoll"
)

// lockedBuffer is a bytes.Buffer safe for the flusher goroutine and the test.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
	err    error
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	if l.err != nil {
		return 0, l.err
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestBufferedWriterKeepsEveryLineInOrder(t *testing.T) {
	tests := []struct {
		name string
		o    BufferOptions
	}{
		{"defaults", BufferOptions{}},
		{"small batches", BufferOptions{Size: 100, Interval: time.Millisecond}},
		{"hard limit reached", BufferOptions{Size: 64, Limit: 64, Interval: time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out lockedBuffer
			bw := NewBufferedWriter(&out, tc.o)
			const writers, lines = 8, 500
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range lines {
						if _, err := fmt.Fprintf(bw, "w%d line %d\n", w, i); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			if err := bw.Close(); err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(got) != writers*lines {
				t.Fatalf("%d lines written, want %d", len(got), writers*lines)
			}
			next := make([]int, writers)
			for _, l := range got {
				var w, i int
				if _, err := fmt.Sscanf(l, "w%d line %d", &w, &i); err != nil || i != next[w] {
					t.Fatalf("line %q out of order or torn (want w%d line %d)", l, w, next[w])
				}
				next[w]++
			}
			if out.writes >= writers*lines {
				t.Fatalf("%d writes for %d lines: nothing batched", out.writes, writers*lines)
			}
		})
	}
}

func TestBufferedWriterFlushesOnItsOwn(t *testing.T) {
	var out lockedBuffer
	bw := NewBufferedWriter(&out, BufferOptions{Interval: 5 * time.Millisecond})
	defer bw.Close()
	_, _ = bw.Write([]byte("one\n"))
	testpoll.Until(t, 5*time.Second, "the interval flush", func() bool { return out.String() == "one\n" })
}

func TestBufferedWriterAfterClose(t *testing.T) {
	var out lockedBuffer
	bw := NewBufferedWriter(&out, BufferOptions{Interval: time.Hour})
	_, _ = bw.Write([]byte("before\n"))
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bw.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	_, _ = bw.Write([]byte("after\n"))
	if got := out.String(); got != "before\nafter\n" {
		t.Fatalf("got %q", got)
	}
}

func TestBufferedWriterReportsWriteErrors(t *testing.T) {
	out := &lockedBuffer{err: errors.New("disk full")}
	bw := NewBufferedWriter(out, BufferOptions{Interval: time.Hour})
	_, _ = bw.Write([]byte("x\n"))
	if err := bw.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Close = %v, want the write error", err)
	}
}

func TestBufferedLoggerLines(t *testing.T) {
	var out lockedBuffer
	bw := NewBufferedWriter(&out, BufferOptions{Interval: time.Hour})
	log, err := NewLogger(bw, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		log.Info("request", "n", i, slog.String("password", "hunter2"))
	}
	if strings.Contains(out.String(), "request") {
		t.Fatal("written before a flush was due")
	}
	_ = bw.Close()
	if n := strings.Count(out.String(), "msg=request"); n != 100 || strings.Contains(out.String(), "hunter2") {
		t.Fatalf("%d lines after Close (want 100), or a secret leaked", n)
	}
}

// BenchmarkAccessLineToFile is the edge's access line written to a real
// file: one write system call per line, against batched writes.
func BenchmarkAccessLineToFile(b *testing.B) {
	for _, buffered := range []bool{false, true} {
		b.Run(fmt.Sprintf("buffered=%v", buffered), func(b *testing.B) {
			f, err := os.CreateTemp(b.TempDir(), "log")
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			var w io.Writer = f
			if buffered {
				bw := NewBufferedWriter(f, BufferOptions{})
				defer bw.Close()
				w = bw
			}
			benchAccessLine(b, newTextHandler(w, slog.LevelInfo))
		})
	}
}

// panicOnce is a writer whose first Write panics.
type panicOnce struct {
	lockedBuffer
	panicked atomic.Bool
}

func (p *panicOnce) Write(b []byte) (int, error) {
	if p.panicked.CompareAndSwap(false, true) {
		panic("writer broke on a line")
	}
	return p.lockedBuffer.Write(b)
}

// TestBufferedWriterSurvivesAPanickingWriter: the batches are written by
// the writer's own goroutine, where nothing recovered a panic of the
// underlying writer: it ended the process (this crashed the test binary on
// main). Now the panic is the writer's error, returned by Flush and Close
// like a failed write, and later lines are written.
func TestBufferedWriterSurvivesAPanickingWriter(t *testing.T) {
	out := &panicOnce{}
	bw := NewBufferedWriter(out, BufferOptions{Interval: time.Millisecond})
	_, _ = bw.Write([]byte("lost\n"))
	testpoll.Until(t, 5*time.Second, "the background flush", out.panicked.Load)
	_, _ = bw.Write([]byte("after\n"))
	err := bw.Close()
	if err == nil || !strings.Contains(err.Error(), "panicked") || !strings.Contains(err.Error(), "writer broke on a line") {
		t.Fatalf("Close = %v, want the writer's panic as its error", err)
	}
	if got := out.String(); got != "after\n" {
		t.Fatalf("written %q, want the line after the panic", got)
	}
}
