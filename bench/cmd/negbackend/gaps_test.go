package main

import (
	"strings"
	"testing"
	"time"
)

// TestGaps: each device's time from the end of its held request to its
// next one, with an injected clock.
func TestGaps(t *testing.T) {
	type step struct {
		at     time.Duration
		device string
		begin  bool
	}
	tests := []struct {
		name  string
		steps []step
		want  string
	}{
		{"no gap before the first end", []step{{0, "a", true}, {time.Second, "b", true}},
			"gaps=0 p50_ms=0 p99_ms=0 max_ms=0 over_5s=0 waiting=0"},
		{"one device back after 1.5 s", []step{{0, "a", true}, {time.Second, "a", false}, {2500 * time.Millisecond, "a", true}},
			"gaps=1 p50_ms=1500 p99_ms=1500 max_ms=1500 over_5s=0 waiting=0"},
		{"one over 5 s, one still waiting", []step{
			{0, "a", false}, {0, "b", false}, {0, "c", false},
			{time.Second, "a", true}, {6 * time.Second, "b", true}},
			"gaps=2 p50_ms=6000 p99_ms=6000 max_ms=6000 over_5s=1 waiting=1"},
		{"exactly 5 s is within", []step{{0, "a", false}, {5 * time.Second, "a", true}},
			"gaps=1 p50_ms=5000 p99_ms=5000 max_ms=5000 over_5s=0 waiting=0"},
		{"no DeviceId: not counted", []step{{0, "", false}, {time.Second, "", true}},
			"gaps=0 p50_ms=0 p99_ms=0 max_ms=0 over_5s=0 waiting=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := time.Unix(1000, 0)
			var now time.Time
			g := newGaps(func() time.Time { return now })
			for _, s := range tt.steps {
				now = base.Add(s.at)
				if s.begin {
					g.begin(s.device)
				} else {
					g.end(s.device)
				}
			}
			var b strings.Builder
			g.write(&b)
			if got := strings.TrimSpace(b.String()); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
