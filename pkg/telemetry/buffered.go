package telemetry

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// BufferedWriter batches log lines into few writes: one system call per
// access-log line was ~5 µs of every edge request (docs/benchmarks.md).
// Lines are kept whole and in order. Pending bytes are written by a
// background goroutine every interval, sooner when the batch size is
// reached, and by Flush and Close; a writer waits only when the disk is so
// far behind that the hard limit of pending bytes is reached. Lines written
// less than an interval before a crash can be lost: call Close on every way
// out of the process.
type BufferedWriter struct {
	w        io.Writer
	size     int
	hard     int
	interval time.Duration

	mu    sync.Mutex
	buf   []byte
	spare []byte // the buffer not being filled; nil while a flush writes it
	err   error  // first write error, returned by Flush and Close

	flushMu sync.Mutex // one flush at a time, in order
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	closed  bool
}

// BufferOptions tune a BufferedWriter; zero values take the defaults.
type BufferOptions struct {
	// Size is the batch size that triggers a background write. Zero means 64 KiB.
	Size int
	// Limit is the most bytes held before writers wait for the disk.
	// Zero means 16 × Size.
	Limit int
	// Interval is the longest a line waits. Zero means 100 ms.
	Interval time.Duration
}

// NewBufferedWriter starts a BufferedWriter over w. Close it to write the
// rest and stop its goroutine.
func NewBufferedWriter(w io.Writer, o BufferOptions) *BufferedWriter {
	if o.Size <= 0 {
		o.Size = 64 << 10
	}
	if o.Limit < o.Size {
		o.Limit = 16 * o.Size
	}
	if o.Interval <= 0 {
		o.Interval = 100 * time.Millisecond
	}
	b := &BufferedWriter{
		w: w, size: o.Size, hard: o.Limit, interval: o.Interval,
		buf: make([]byte, 0, o.Size), spare: make([]byte, 0, o.Size),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go b.run()
	return b
}

// Write queues p, one whole line from a handler. It does not wait for the
// disk unless Limit bytes are already pending. After Close it writes
// through.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = b.Flush() // whatever Close has not written yet goes first
		b.flushMu.Lock()
		defer b.flushMu.Unlock()
		return b.writeOut(p)
	}
	b.buf = append(b.buf, p...)
	n := len(b.buf)
	b.mu.Unlock()
	switch {
	case n >= b.hard:
		_ = b.Flush()
	case n >= b.size:
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Flush writes what is pending and returns the first write error seen.
func (b *BufferedWriter) Flush() error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	data := b.buf
	if len(data) == 0 {
		err := b.err
		b.mu.Unlock()
		return err
	}
	b.buf, b.spare = b.spare[:0], nil
	b.mu.Unlock()
	_, err := b.writeOut(data)
	b.mu.Lock()
	if err != nil && b.err == nil {
		b.err = err
	}
	if cap(data) > 4*b.size { // do not keep a burst's buffer
		data = make([]byte, 0, b.size)
	}
	b.spare = data[:0]
	err = b.err
	b.mu.Unlock()
	return err
}

// Close writes what is pending, stops the background goroutine, and makes
// later writes go straight through. It is safe to call more than once.
func (b *BufferedWriter) Close() error {
	b.mu.Lock()
	already := b.closed
	b.closed = true
	b.mu.Unlock()
	if !already {
		close(b.stop)
		<-b.done
	}
	err := b.Flush()
	if already {
		return nil
	}
	return err
}

func (b *BufferedWriter) run() {
	defer close(b.done)
	t := time.NewTicker(b.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-b.kick:
		case <-b.stop:
			return
		}
		_ = b.Flush() // a write error is kept for Flush and Close
	}
}

// writeOut writes p to the underlying writer and returns a panic of it as
// the write's error. Batches are written by the writer's own goroutine
// (run), where nothing else would recover it: the process ended
// (TestBufferedWriterSurvivesAPanickingWriter). The error is kept like a
// failed write's, for Flush and Close; the batch is lost, later lines are
// written. There is no log to report it to: this is the log.
func (b *BufferedWriter) writeOut(p []byte) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			n, err = 0, fmt.Errorf("telemetry: the log writer panicked: %v", v)
		}
	}()
	return b.w.Write(p)
}
