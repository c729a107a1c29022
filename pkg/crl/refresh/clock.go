package refresh

import (
	"time"
)

// Clock is the time source of a Refresher; tests substitute a fake.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives once d has passed, and a function
	// that stops it.
	After(d time.Duration) (<-chan time.Time, func())
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) After(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// Backoff spaces the retries of a failing distribution point between
// regular refreshes: the n-th consecutive failure waits
// min(Max, Initial·2^(n-1)), less a random fraction up to Jitter, and never
// longer than the refresh interval.
type Backoff struct {
	// Initial is the wait after the first failure; 0 means 30 s.
	Initial time.Duration
	// Max caps the wait; 0 means 30 min.
	Max time.Duration
	// Jitter is the largest fraction of a wait removed at random, so that
	// replicas do not retry in step; 0 means 0.2, negative means none.
	Jitter float64
}

// Delay returns the wait after the given number of consecutive failures
// (at least 1), with rnd in [0, 1) drawing the jitter.
func (b Backoff) Delay(failures int, rnd float64) time.Duration {
	initial, maxWait, jitter := b.Initial, b.Max, b.Jitter
	if initial <= 0 {
		initial = 30 * time.Second
	}
	if maxWait <= 0 {
		maxWait = 30 * time.Minute
	}
	switch {
	case jitter == 0:
		jitter = 0.2
	case jitter < 0:
		jitter = 0
	case jitter > 1:
		jitter = 1
	}
	d := initial
	for i := 1; i < failures && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	return d - time.Duration(float64(d)*jitter*rnd)
}
