package twingraph

import (
	"math/rand/v2"
	"testing"
	"time"
)

// checkSourceTime fails when ParseSourceTime disagrees with time.Parse, or
// when the direct reader declines a shape it is meant to read.
func checkSourceTime(t *testing.T, s string) {
	t.Helper()
	got, err := ParseSourceTime(s)
	want, werr := time.Parse(time.RFC3339Nano, s)
	if (err == nil) != (werr == nil) {
		t.Fatalf("%q: error %v, time.Parse %v", s, err, werr)
	}
	if err == nil && got != want.UnixNano() {
		t.Fatalf("%q: %d, time.Parse %d (%v)", s, got, want.UnixNano(), want)
	}
	if _, ok := parseRFC3339(s); ok && werr != nil {
		t.Fatalf("%q: read directly, but time.Parse refuses it: %v", s, werr)
	}
}

func TestParseSourceTime(t *testing.T) {
	for _, s := range []string{
		"2026-11-26T06:15:14Z", "2026-11-26T06:15:14.1Z", "2026-11-26T06:15:14.123456789Z",
		"2026-11-26T06:15:14.1234567891Z", "2024-02-29T23:59:59.5+05:30", "2023-02-29T00:00:00Z",
		"2026-12-31T23:59:59-11:45", "1900-01-01T00:00:00Z", "2199-12-31T23:59:59.999999999Z",
		"1899-12-31T23:59:59Z", "2200-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "2026-04-31T00:00:00Z",
		"2026-01-01T24:00:00Z", "2026-01-01T00:60:00Z", "2026-01-01T00:00:60Z", "2026-01-01T00:00:00",
		"2026-01-01T00:00:00.Z", "2026-01-01t00:00:00z", "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00+0100",
		"2026-01-01 00:00:00Z", "+026-01-01T00:00:00Z", "2026-01-01T00:00:00.12a4Z", "", "Z",
	} {
		checkSourceTime(t, s)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	layouts := []string{time.RFC3339, time.RFC3339Nano, "2006-01-02T15:04:05.000Z07:00", "2006-01-02T15:04:05.000000Z07:00"}
	for range 100000 {
		tm := time.Unix(rng.Int64N(7e9)-2.3e9, rng.Int64N(1e9))
		if rng.IntN(2) == 0 {
			tm = tm.In(time.FixedZone("", (rng.IntN(48)-24)*900))
		} else {
			tm = tm.UTC()
		}
		s := tm.Format(layouts[rng.IntN(len(layouts))])
		checkSourceTime(t, s)
		if y := tm.Year(); y >= 1900 && y <= 2199 {
			if _, ok := parseRFC3339(s); !ok {
				t.Fatalf("%q not read directly", s)
			}
		}
	}
}

func FuzzParseSourceTime(f *testing.F) {
	for _, s := range []string{"2026-11-26T06:15:14.123Z", "2024-02-29T23:59:59+05:30", "2026-01-01T00:00:00.1234567891Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkSourceTime(t, s) })
}
