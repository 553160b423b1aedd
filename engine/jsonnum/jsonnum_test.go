package jsonnum

import (
	"math"
	"strconv"
	"testing"
)

// check fails unless ParseFloat(s) agrees with strconv.ParseFloat(s, 64)
// bit for bit.
func check(t *testing.T, s string) {
	t.Helper()
	got, ok := ParseFloat(s)
	want, err := strconv.ParseFloat(s, 64)
	if ok != (err == nil) || math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
		t.Fatalf("ParseFloat(%q) = %v, %v; strconv gives %v, %v", s, got, ok, want, err)
	}
}

func TestParseFloat(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "0.0", "-0.0", "1", "-1", "21.5", "400", "15.9", "0.1", "0.000123", "123456789012345",
		"1234567890123456", "9007199254740993", "1e22", "1e23", "1.5e-22", "1e-23", "1E5", "1e+5", "2.5e-3",
		"1.7976931348623157e308", "1e309", "-1e309", "4.9e-324", "1e-400", "0.30000000000000004",
		"01", "1.", ".5", "-", "", "+1", "1e", "1e+", "0x10", "1_0", "inf", "NaN", " 1", "1 ", "1.5.5",
		"100000000000000000000000", "0.0000000000000000000000001", "1e99999999999", "12345.678901234",
	} {
		check(t, s)
	}
	// The fast path takes these.
	for _, s := range []string{"21.5", "-400", "0.000123", "123456789012345", "1e22", "2.5E-3"} {
		if _, ok := fast(s); !ok {
			t.Errorf("fast(%q) declined", s)
		}
	}
}

func FuzzParseFloat(f *testing.F) {
	for _, s := range []string{"0", "-0.0", "21.5", "1e22", "1e23", "0.000123", "123456789012345.5", "1.", "01"} {
		f.Add(s)
	}
	f.Fuzz(check)
}

var sink float64

func BenchmarkParseFloat(b *testing.B) {
	in := []string{"21.5", "400", "17.3", "-4.25", "1013.25", "0.5"}
	b.Run("impl=jsonnum", func(b *testing.B) {
		for i := range b.N {
			v, _ := ParseFloat(in[i%len(in)])
			sink += v
		}
	})
	b.Run("impl=strconv", func(b *testing.B) {
		for i := range b.N {
			v, _ := strconv.ParseFloat(in[i%len(in)], 64)
			sink += v
		}
	})
}
