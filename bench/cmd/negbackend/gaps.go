package main

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// gaps measures, per device (the request's DeviceId), how long it went
// without a Ping held here: from the end of one held request to the
// arrival of the device's next one. A restarted edge answers its Pings and
// the devices reconnect to another edge; the aim is that every
// device holds a Ping again within 5 s (bench/drain.sh reads
// /_negbackend/gaps). Only the last end per device is kept.
type gaps struct {
	mu    sync.Mutex
	now   func() time.Time
	ended map[string]time.Time
	seen  []time.Duration
}

func newGaps(now func() time.Time) *gaps {
	return &gaps{now: now, ended: map[string]time.Time{}}
}

// begin notes a held request of device arriving, recording its gap when an
// earlier one ended.
func (g *gaps) begin(device string) {
	if device == "" {
		return
	}
	t := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.ended[device]; ok {
		g.seen = append(g.seen, t.Sub(e))
		delete(g.ended, device)
	}
}

// end notes that device's held request ended (answered or cut).
func (g *gaps) end(device string) {
	if device == "" {
		return
	}
	t := g.now()
	g.mu.Lock()
	g.ended[device] = t
	g.mu.Unlock()
}

// write prints the gaps seen so far: count, median, 99th percentile and
// longest in milliseconds, how many exceeded 5 s, and the devices still
// without a Ping.
func (g *gaps) write(w io.Writer) {
	g.mu.Lock()
	s := slices.Clone(g.seen)
	waiting := len(g.ended)
	g.mu.Unlock()
	slices.Sort(s)
	q := func(p float64) int64 {
		if len(s) == 0 {
			return 0
		}
		return s[min(len(s)-1, int(p*float64(len(s))))].Milliseconds()
	}
	over := len(s) - atMost(s, 5*time.Second)
	fmt.Fprintf(w, "gaps=%d p50_ms=%d p99_ms=%d max_ms=%d over_5s=%d waiting=%d\n", len(s), q(0.5), q(0.99), q(1), over, waiting)
}

// atMost returns how many of the sorted gaps s are at most d.
func atMost(s []time.Duration, d time.Duration) int {
	i, _ := slices.BinarySearch(s, d+1)
	return i
}
