package krbtime

import (
	"sync"
	"testing"
	"time"
)

func TestNextStrictlyIncreases(t *testing.T) {
	base := time.Date(2026, 12, 5, 8, 0, 0, 999_999_000, time.UTC)
	tests := []struct {
		name  string
		clock []time.Time
		want  []time.Time
	}{
		{"clock moves", []time.Time{base, base.Add(time.Second)}, []time.Time{base, base.Add(time.Second)}},
		{"same microsecond", []time.Time{base, base.Add(300 * time.Nanosecond), base},
			[]time.Time{base, base.Add(time.Microsecond), base.Add(2 * time.Microsecond)}},
		{"clock steps back", []time.Time{base, base.Add(-time.Minute), base.Add(time.Second)},
			[]time.Time{base, base.Add(time.Microsecond), base.Add(time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Stamper
			for i, now := range tt.clock {
				if got := s.Next(now); !got.Equal(tt.want[i]) {
					t.Fatalf("call %d: Next(%v) = %v, want %v", i, now, got, tt.want[i])
				}
			}
		})
	}
	// The bump carries into the second: 999999 µs + 1 is the next second's 0.
	var s Stamper
	s.Next(base)
	if got := s.Next(base); got.Nanosecond() != 0 || got.Unix() != base.Unix()+1 {
		t.Fatalf("carry: %v", got)
	}
}

func TestNextConcurrentUnique(t *testing.T) {
	var s Stamper
	now := time.Unix(1_700_000_000, 0) // a frozen clock: every call collides
	const workers, each = 8, 500
	out := make([][]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				out[w] = append(out[w], s.Next(now).UnixMicro())
			}
		}()
	}
	wg.Wait()
	seen := make(map[int64]bool, workers*each)
	for _, o := range out {
		for i, v := range o {
			if seen[v] {
				t.Fatalf("time %d handed out twice", v)
			}
			seen[v] = true
			if i > 0 && v <= o[i-1] {
				t.Fatalf("not increasing within one goroutine: %d after %d", v, o[i-1])
			}
		}
	}
}
