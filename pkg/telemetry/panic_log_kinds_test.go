package telemetry

import (
	"log/slog"
	"strconv"
	"testing"
	"time"
)

// TestPanicLogKinds: each kind of panic (a site's message, a task) has its
// own rate, so one kind's flood does not hide another's first panic; past
// maxPanicKinds the new kinds share one rate, so a message built from a
// value by mistake cannot grow the map or lift the rate.
func TestPanicLogKinds(t *testing.T) {
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	p := NewPanicLog(slog.New(slog.DiscardHandler), func() time.Time { return now })
	logged := func(msg string, n int) int {
		got := 0
		for range n {
			if p.Log(msg, "v", NoStack) {
				got++
			}
		}
		return got
	}
	if got := logged("flood", 3*PanicBurst); got != PanicBurst {
		t.Fatalf("the flood: %d lines, want %d", got, PanicBurst)
	}
	if got := logged("another site", 1); got != 1 {
		t.Fatal("another site's first panic hidden by the flood")
	}
	// Kinds up to the bound each get their rate; past it they share one.
	for i := len(p.kinds); i < maxPanicKinds; i++ {
		if got := logged("kind "+strconv.Itoa(i), 1); got != 1 {
			t.Fatalf("kind %d within the bound: not logged", i)
		}
	}
	past := 0
	for i := range 4 * PanicBurst {
		past += logged("past the bound "+strconv.Itoa(i), 1)
	}
	if past != PanicBurst || len(p.kinds) > maxPanicKinds+1 {
		t.Fatalf("past the bound: %d lines, %d kinds; want %d lines (one shared rate), at most %d kinds", past, len(p.kinds), PanicBurst, maxPanicKinds+1)
	}
}
