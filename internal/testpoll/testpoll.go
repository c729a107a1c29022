package testpoll

import (
	"testing"
	"time"
)

// The poll interval starts at minInterval, so that a condition that comes
// true at once costs almost nothing, and doubles up to maxInterval, so
// that a long wait does not spin.
const (
	minInterval = time.Millisecond
	maxInterval = 50 * time.Millisecond
)

// Within polls cond until it holds or d passes, and reports whether it
// held. cond is called at least once, and once more at the deadline.
func Within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	interval := minInterval
	for {
		if cond() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(interval, left)) // polling interval, not a wait for an event
		interval = min(2*interval, maxInterval)
	}
}

// Until polls cond until it holds, and fails tb (Fatalf) naming what when d
// passes first.
func Until(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Within(d, cond) {
		tb.Fatalf("timed out after %s waiting for %s", d, what)
	}
}
