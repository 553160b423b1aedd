// Package jsonnum parses JSON numbers into float64 for the hand-written
// decoders of ingestion, instance validation and the telemetry history.
package jsonnum

import "strconv"

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// ParseFloat returns what strconv.ParseFloat(s, 64) returns, with ok
// reporting a nil error. Numbers in JSON's grammar with at most 15
// significant digits and a decimal exponent within ±22 — nearly every
// reading a sensor sends — are converted without strconv: the digits and
// the power of ten are both exact in float64, so one multiplication or
// division rounds correctly (Clinger's fast path). Everything else is
// left to strconv.
func ParseFloat(s string) (v float64, ok bool) {
	if v, ok := fast(s); ok {
		return v, true
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// fast converts s when it is a JSON number that the fast path converts
// exactly; ok is false for anything else, which may still be a number.
func fast(s string) (float64, bool) {
	i, n := 0, len(s)
	neg := false
	if i < n && s[i] == '-' {
		neg = true
		i++
	}
	var mant uint64
	digits := 0 // significant digits in mant, leading zeros excluded
	exp := 0
	switch {
	case i < n && s[i] == '0':
		i++
	case i < n && s[i] >= '1' && s[i] <= '9':
		for ; i < n && s[i] >= '0' && s[i] <= '9'; i++ {
			mant = mant*10 + uint64(s[i]-'0')
			digits++
			if digits > 15 {
				return 0, false
			}
		}
	default:
		return 0, false
	}
	if i < n && s[i] == '.' {
		i++
		start := i
		for ; i < n && s[i] >= '0' && s[i] <= '9'; i++ {
			if mant == 0 && s[i] == '0' {
				exp-- // a leading zero of the fraction: no significant digit
				continue
			}
			mant = mant*10 + uint64(s[i]-'0')
			digits++
			exp--
			if digits > 15 {
				return 0, false
			}
		}
		if i == start {
			return 0, false
		}
	}
	if i < n && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < n && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		if i >= n {
			return 0, false
		}
		e := 0
		for ; i < n && s[i] >= '0' && s[i] <= '9'; i++ {
			if e > 1000 {
				return 0, false
			}
			e = e*10 + int(s[i]-'0')
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if i != n {
		return 0, false
	}
	f := float64(mant) // exact: mant < 10^15 < 2^53
	switch {
	case mant == 0 || exp == 0:
	case exp > 0 && exp <= 22:
		f *= pow10[exp]
	case exp < 0 && exp >= -22:
		f /= pow10[-exp]
	default:
		return 0, false
	}
	if neg {
		f = -f
	}
	return f, true
}
