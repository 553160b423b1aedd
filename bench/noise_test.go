package bench

import (
	"testing"
	"time"
)

func TestNoise(t *testing.T) {
	p50, p99 := Noise(200*time.Millisecond, 30*time.Microsecond)
	t.Logf("p50 %.1f µs, p99 %.1f µs", p50, p99)
	// Calibrated to about 30 µs: its median is within a wide band of it
	// even on a busy machine, and no quantile is below the median.
	if p50 < 10 || p50 > 200 || p99 < p50 {
		t.Fatalf("p50 %.1f µs, p99 %.1f µs for a 30 µs computation", p50, p99)
	}
}
