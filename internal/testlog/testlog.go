// Package testlog is a log destination a test shares with the goroutines
// it starts: slog handlers write to it from any goroutine (a role's, a
// server's, a background refresh's) while the test reads what was written.
// bytes.Buffer and strings.Builder are not safe for that, and the tests had
// written the same locked buffer seven times.
package testlog

import (
	"strings"
	"sync"
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
