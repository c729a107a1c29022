package testlog

import (
	"fmt"
	"strings"
	"sync"
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
