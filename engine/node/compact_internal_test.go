package node

import (
	"testing"
	"time"
)

func TestCompactDue(t *testing.T) {
	const mib = 1 << 20
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name         string
		live, unused uint64
		last         time.Time
		lastLive     uint64
		want         bool
	}{
		{"small heap", 100 * mib, 200 * mib, time.Time{}, 0, false},
		{"dense heap", 1000 * mib, 400 * mib, time.Time{}, 0, false},
		{"fragmented, never rebuilt", 1000 * mib, 500 * mib, time.Time{}, 0, true},
		{"rebuilt a minute ago at the same size", 1000 * mib, 600 * mib, now.Add(-time.Minute), 1000 * mib, false},
		{"rebuilt a minute ago, grown by half since", 1500 * mib, 800 * mib, now.Add(-time.Minute), 1000 * mib, true},
		{"rebuilt 10 minutes ago", 1000 * mib, 600 * mib, now.Add(-10 * time.Minute), 1000 * mib, true},
	} {
		if got := compactDue(c.live, c.unused, now, c.last, c.lastLive); got != c.want {
			t.Errorf("%s: compactDue = %v, want %v", c.name, got, c.want)
		}
	}
}
