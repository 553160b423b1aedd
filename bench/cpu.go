package bench

import (
	"runtime/metrics"
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

// GCStats is what the garbage collector has done so far in this process.
type GCStats struct {
	Cycles uint64
	// CPU is the collector's CPU time: background marking, assists taken
	// from allocating goroutines, and pauses.
	CPU time.Duration
	// Allocated is the bytes allocated on the heap.
	Allocated uint64
}

// GC returns the collector's work so far (runtime/metrics).
func GC() GCStats {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	var g GCStats
	if s[0].Value.Kind() == metrics.KindUint64 {
		g.Cycles = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindFloat64 {
		g.CPU = time.Duration(s[1].Value.Float64() * float64(time.Second))
	}
	if s[2].Value.Kind() == metrics.KindUint64 {
		g.Allocated = s[2].Value.Uint64()
	}
	return g
}

// Sub returns the work done between earlier and g.
func (g GCStats) Sub(earlier GCStats) GCStats {
	return GCStats{Cycles: g.Cycles - earlier.Cycles, CPU: g.CPU - earlier.CPU, Allocated: g.Allocated - earlier.Allocated}
}
