package krbtime

import (
	"sync/atomic"
	"time"
)

// Stamper returns strictly increasing times with microsecond resolution.
// The zero value is ready to use; it is safe for concurrent use and must
// not be copied after first use.
type Stamper struct {
	last atomic.Int64 // microseconds since the Unix epoch of the last time handed out
}

// Next returns now truncated to the microsecond, or, when that is not later
// than the last time returned, the last time plus one microsecond. The
// result's Nanosecond()/1000 is the authenticator's cusec and its second the
// ctime. Stepping the clock back therefore runs the times ahead of the
// clock until it catches up (by at most the step), which an acceptor
// tolerates within its clock-skew allowance (5 minutes by default).
func (s *Stamper) Next(now time.Time) time.Time {
	us := now.UnixMicro()
	for {
		last := s.last.Load()
		next := us
		if next <= last {
			next = last + 1
		}
		if s.last.CompareAndSwap(last, next) {
			if next == us {
				return now.Truncate(time.Microsecond)
			}
			return time.UnixMicro(next).In(now.Location())
		}
	}
}
