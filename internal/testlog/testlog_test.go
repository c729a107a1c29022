package testlog

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestBufferKeepsConcurrentWrites: lines written from many goroutines while
// the buffer is read all end up in it, whole (run with -race).
func TestBufferKeepsConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(&b, "g%d line %d\n", g, i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	got := b.String()
	if n := strings.Count(got, "\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
	for g := range 8 {
		if !strings.Contains(got, fmt.Sprintf("g%d line 99\n", g)) {
			t.Fatalf("goroutine %d's last line is missing", g)
		}
	}
}

// TestPanicOn: the handler panics on the records whose message starts with
// the prefix while armed, once with Once, and writes every other record.
func TestPanicOn(t *testing.T) {
	tests := []struct {
		name   string
		once   bool
		panics int // of the three "crl updated" records
	}{
		{"while armed", false, 3},
		{"once", true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b Buffer
			var armed atomic.Bool
			armed.Store(true)
			log := slog.New(PanicOn{Handler: slog.NewTextHandler(&b, nil), Prefix: "crl updated", Value: "boom: ", Armed: &armed, Once: tc.once}).With("role", "crl")
			panics := 0
			for _, msg := range []string{"crl updated", "other", "crl updated now", "crl updated"} {
				func() {
					defer func() {
						if v := recover(); v != nil {
							if !strings.HasPrefix(fmt.Sprint(v), "boom: crl updated") {
								t.Fatalf("panic value %v", v)
							}
							panics++
						}
					}()
					log.Info(msg)
				}()
			}
			if panics != tc.panics || !strings.Contains(b.String(), "msg=other role=crl") {
				t.Fatalf("%d panics, want %d; written:\n%s", panics, tc.panics, b.String())
			}
		})
	}
}
