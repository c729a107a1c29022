//go:build unix

package edge

import (
	"syscall"
	"time"
)

// cpuTime returns the process's user+system CPU time, to report CPU per
// op beside wall time on a shared, loaded machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
