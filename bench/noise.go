package bench

import (
	"slices"
	"time"
)

// Noise times a fixed piece of pure computation (no memory traffic, no
// allocation, no system call), calibrated to take about per, over and over
// for d, and returns its median and 99th percentile in microseconds. Its
// work never varies, so its tail is what the host alone adds to anything
// timed on it (timer interrupts, other tenants of the cores): the floor
// under the p99 of latencies measured in the same run.
func Noise(d, per time.Duration) (p50, p99 float64) {
	const probe = 1 << 16
	t0 := time.Now()
	spin(probe)
	n := max(1, int(float64(probe)*float64(per)/float64(max(time.Since(t0), 1))))
	// Calibrate on the fastest of a few rounds, as the loop runs when
	// nothing interrupts it.
	for range 5 {
		t0 = time.Now()
		spin(n)
		if el := time.Since(t0); el < per*9/10 {
			n = max(1, int(float64(n)*float64(per)/float64(max(el, 1))))
		}
	}
	var lat []float64
	for start := time.Now(); time.Since(start) < d || len(lat) < 100; {
		t := time.Now()
		spin(n)
		lat = append(lat, float64(time.Since(t).Nanoseconds())/1e3)
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
}

var spinSink uint64

// spin runs n rounds of a 64-bit linear congruential step.
func spin(n int) {
	x := spinSink | 1
	for range n {
		x = x*6364136223846793005 + 1442695040888963407
		x ^= x >> 17
	}
	spinSink = x
}
