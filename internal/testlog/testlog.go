// Package testlog is a log destination a test shares with the goroutines
// it starts: slog handlers write to it from any goroutine (a role's, a
// server's, a background refresh's) while the test reads what was written.
// bytes.Buffer and strings.Builder are not safe for that, and the tests had
// written the same locked buffer seven times. PanicOn is a handler that
// panics where a site logs, for the tests of a recovery.
package testlog

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
)

// Buffer is an io.Writer safe for concurrent use that keeps everything
// written to it. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// PanicOn is a slog handler that panics, while Armed holds, on a record
// whose message starts with Prefix, as code meeting a value it did not
// expect would where it logs; its panic value is Value followed by the
// message. With Once, that panic disarms it. Other records go to Handler.
type PanicOn struct {
	slog.Handler
	Prefix string
	Value  string
	Armed  *atomic.Bool
	Once   bool
}

// Handle panics as PanicOn says, or writes rec through Handler.
func (h PanicOn) Handle(ctx context.Context, rec slog.Record) error {
	if strings.HasPrefix(rec.Message, h.Prefix) && (h.Once && h.Armed.CompareAndSwap(true, false) || !h.Once && h.Armed.Load()) {
		panic(h.Value + rec.Message)
	}
	return h.Handler.Handle(ctx, rec)
}

// WithAttrs keeps the panic on the handler with the attributes.
func (h PanicOn) WithAttrs(as []slog.Attr) slog.Handler {
	h.Handler = h.Handler.WithAttrs(as)
	return h
}

// WithGroup keeps the panic on the handler with the group.
func (h PanicOn) WithGroup(name string) slog.Handler {
	h.Handler = h.Handler.WithGroup(name)
	return h
}
