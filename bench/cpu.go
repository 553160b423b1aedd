package bench

import (
	"syscall"
	"time"
)

// CPUTime returns the process's user and system CPU time so far, every
// goroutine and the garbage collector included. On a shared machine the
// CPU time per operation is steadier than operations per second.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
