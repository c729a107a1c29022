package testpoll

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fatalTB records Fatalf instead of ending the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

// TestWithin: a condition that comes true after some polls is seen; one
// that never does is reported false once the deadline passed, having been
// asked more than once (it is polled, not checked once).
func TestWithin(t *testing.T) {
	var calls atomic.Int32
	if !Within(time.Minute, func() bool { return calls.Add(1) >= 5 }) {
		t.Fatal("a condition true at the fifth poll was not seen")
	}
	if got := calls.Load(); got != 5 {
		t.Errorf("cond called %d times, want 5 (stop at the first true)", got)
	}
	calls.Store(0)
	if Within(20*time.Millisecond, func() bool { calls.Add(1); return false }) {
		t.Fatal("a condition that never holds was reported true")
	}
	if calls.Load() < 2 {
		t.Errorf("cond called %d times before giving up, want it polled", calls.Load())
	}
}

// TestUntil: a condition that holds does not fail the test; one that never
// does fails it, naming what was waited for and for how long.
func TestUntil(t *testing.T) {
	ok := &fatalTB{}
	Until(ok, time.Minute, "the reload", func() bool { return true })
	if ok.msg != "" {
		t.Errorf("a condition that holds failed the test: %s", ok.msg)
	}
	never := &fatalTB{}
	Until(never, 10*time.Millisecond, "the reload to be applied", func() bool { return false })
	if !strings.Contains(never.msg, "the reload to be applied") || !strings.Contains(never.msg, "10ms") {
		t.Errorf("Fatalf message %q, want what was waited for and the deadline", never.msg)
	}
}
