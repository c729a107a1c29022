//go:build unix

package suite

import (
	"syscall"
	"time"
)

// cpuTime returns the process's user+system CPU time. Benchmarks report it
// per op beside the wall time, because the shared machines they run on are
// often busy: CPU time is what the code costs, wall time includes waiting.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
