package edge

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestSpreadAnswers: the held Pings are answered in batches whose sizes
// differ by at most one, one batch every window/batches after the first,
// in the order given; all at once without a window or once the drain's
// context ends; a request no longer held is not counted.
func TestSpreadAnswers(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		window time.Duration
		// cancelAfter cancels the context after this many waits (-1: never).
		cancelAfter int
		// gone are the requests no longer held (their wake reports false).
		gone []int
		// slow is how long the clock moves while the wake of that index
		// runs (a saturated CPU).
		slow         map[int]time.Duration
		wantBatches  []int
		wantWait     time.Duration
		wantAnswered int
	}{
		{"no window: all at once", 5, 0, -1, nil, nil, []int{5}, 0, 5},
		{"window under a tick: all at once", 5, spreadTick - 1, -1, nil, nil, []int{5}, 0, 5},
		{"ten over five ticks", 10, 5 * spreadTick, -1, nil, nil, []int{2, 2, 2, 2, 2}, spreadTick, 10},
		{"uneven: sizes differ by one at most", 7, 3 * spreadTick, -1, nil, nil, []int{2, 2, 3}, spreadTick, 7},
		{"fewer Pings than ticks: one per batch", 3, time.Second, -1, nil, nil, []int{1, 1, 1}, time.Second / 3, 3},
		{"drain ends: the rest at once", 8, 4 * spreadTick, 1, nil, nil, []int{2, 6}, spreadTick, 8},
		{"answered meanwhile: not counted", 4, 2 * spreadTick, -1, []int{1, 3}, nil, []int{2, 2}, spreadTick, 2},
		// Batch 1's wakes took 2.5 ticks: batches 2 and 3 are due, and go
		// at once with it; batch 4 waits only what is left of its tick.
		{"late: due batches at once, the clock kept", 10, 5 * spreadTick, -1, nil, map[int]time.Duration{1: 5 * spreadTick / 2},
			[]int{6, 2, 2}, spreadTick / 2, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var order []int
			var batches []int
			last := 0
			wakes := make([]func() bool, tt.n)
			for i := range wakes {
				wakes[i] = func() bool {
					order = append(order, i)
					return !slices.Contains(tt.gone, i)
				}
			}
			clock := time.Unix(0, 0)
			now := func() time.Time { return clock }
			for i, d := range tt.slow {
				w := wakes[i]
				wakes[i] = func() bool { clock = clock.Add(d); return w() }
			}
			waits := 0
			after := func(d time.Duration) <-chan time.Time {
				if waits == 0 && d != tt.wantWait {
					t.Errorf("first wait %v, want %v", d, tt.wantWait)
				}
				clock = clock.Add(d)
				batches = append(batches, len(order)-last)
				last = len(order)
				waits++
				ch := make(chan time.Time, 1)
				if waits == tt.cancelAfter {
					cancel()
				} else {
					ch <- time.Time{}
				}
				return ch
			}
			got := spreadAnswers(ctx, wakes, tt.window, now, after)
			batches = append(batches, len(order)-last)
			if !slices.Equal(batches, tt.wantBatches) {
				t.Errorf("batches %v, want %v", batches, tt.wantBatches)
			}
			if want := slices.Collect(func(yield func(int) bool) {
				for i := range tt.n {
					if !yield(i) {
						return
					}
				}
			}); !slices.Equal(order, want) {
				t.Errorf("answered in order %v, want %v (each once, in the order given)", order, want)
			}
			if got != tt.wantAnswered {
				t.Errorf("answered %d, want %d", got, tt.wantAnswered)
			}
		})
	}
}

// answerOf returns a channel holding a.
func answerOf(a pingAnswer) <-chan pingAnswer {
	c := make(chan pingAnswer, 1)
	c <- a
	return c
}

// TestStopSpreadsHeldPingAnswers: with segmesh.edge.drainSpreadMillis the
// held Pings (parked and over HTTP/2) are answered one batch at a time over
// the window, in the order the shuffle gives (not the order they were
// held), each with Status 1, and Stop returns once all are.
func TestStopSpreadsHeldPingAnswers(t *testing.T) {
	waits := make(chan time.Duration)
	tick := make(chan time.Time)
	const window = 30 * time.Minute
	// The spread keeps to the clock: each wait moves it on by its length.
	clk := &testClock{t: time.Now()}
	h := newHarness(t, nil, options{
		now:  clk.Now,
		tune: func(c *Config) { c.DrainSpread = window },
		after: func(d time.Duration) <-chan time.Time {
			waits <- d
			clk.Add(d)
			return tick
		},
		// Reversed: the proxied Ping, listed after the parked ones, first.
		shuffle: func(n int, swap func(i, j int)) {
			for i := range n / 2 {
				swap(i, n-1-i)
			}
		},
	})
	hd := h.heldExchange(t)
	alice := h.ca.issue(t, certOpts{cn: "alice"})
	bob := h.ca.issue(t, certOpts{cn: "bob"})
	parked := []<-chan pingAnswer{h.sendPing(t, &alice, false), h.sendPing(t, &bob, false)}
	overH2 := h.sendPing(t, &alice, true)
	waitFor(t, "three Pings held at Exchange", func() bool { return hd.entered.Load() == 3 })
	if n := h.edge.parking.len(); n != 2 {
		t.Fatalf("%d parked Pings, want 2", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- h.edge.Stop(ctx) }()

	answered := func(what string, got <-chan pingAnswer) {
		t.Helper()
		a := <-got
		if a.err != nil {
			t.Fatalf("%s: no answer: %v", what, a.err)
		}
		if wrong := drainedPingOK(a.resp, a.body); wrong != "" {
			t.Fatalf("%s: %s", what, wrong)
		}
	}
	// Batch 1 (at once): the HTTP/2 Ping, first in the shuffled order; the
	// parked ones wait for the next batches (Exchange holds them until the
	// test ends, so only the drain can answer them).
	wait := func(batch int) {
		t.Helper()
		if d := <-waits; d != window/3 {
			t.Fatalf("batch %d waits %v, want %v (a third of the window)", batch, d, window/3)
		}
	}
	wait(2)
	answered("Ping over HTTP/2 (first in the shuffled order)", overH2)
	if n := h.edge.parking.drainedCount(); n != 0 {
		t.Fatalf("%d parked Pings answered in the first batch, want 0", n)
	}
	tick <- time.Time{}
	// Batch 2: one parked Ping; the other is answered only after the next tick.
	wait(3)
	var first pingAnswer
	var rest <-chan pingAnswer
	select {
	case first = <-parked[0]:
		rest = parked[1]
	case first = <-parked[1]:
		rest = parked[0]
	}
	answered("parked Ping of the second batch", answerOf(first))
	tick <- time.Time{}
	answered("parked Ping of the third batch", rest)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
}
