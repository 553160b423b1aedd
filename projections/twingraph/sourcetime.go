package twingraph

import (
	"time"

	"github.com/twinlog/twinlog/schemas/dtdl"
)

// ParseSourceTime parses a telemetry point's source time, an RFC 3339
// timestamp, to Unix nanoseconds, exactly as time.Parse with
// time.RFC3339Nano and UnixNano would. The usual shape (a year from 1900
// to 2199, up to nine fractional digits, Z or a ±hh:mm offset) is read
// directly; anything else goes through time.Parse. Ingestion checks and
// the telemetry history read one per point.
func ParseSourceTime(s string) (int64, error) {
	if ns, ok := parseRFC3339(s); ok {
		return ns, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, err
	}
	return t.UnixNano(), nil
}

// parseRFC3339 reads "YYYY-MM-DDThh:mm:ss[.f{1,9}](Z|±hh:mm)"; false for
// anything else, valid or not.
func parseRFC3339(s string) (int64, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	min, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || year < 1900 || year > 2199 ||
		month < 1 || month > 12 || day < 1 || day > dtdl.DaysIn(year, month) || hour > 23 || min > 59 || sec > 59 {
		return 0, false
	}
	rest := s[19:]
	var frac int64
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return 0, false
		}
		for i := 1; i < 10; i++ {
			frac *= 10
			if i < n {
				frac += int64(rest[i] - '0')
			}
		}
		rest = rest[n:]
	}
	var off int64
	switch {
	case rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := digits(rest[1:3])
		om, ok2 := digits(rest[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		off = int64(oh*3600 + om*60)
		if rest[0] == '-' {
			off = -off
		}
	default:
		return 0, false
	}
	secs := daysFromCivil(year, month, day)*86400 + int64(hour*3600+min*60+sec) - off
	return secs*1e9 + frac, true
}

// digits reads s, all ASCII digits, as a number.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		n = n*10 + int(c)
	}
	return n, true
}

// daysFromCivil is the number of days from 1970-01-01 to the given date
// of the proleptic Gregorian calendar (H. Hinnant's days_from_civil).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400 // y >= 1899 here: no negative years
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097 + doe - 719468)
}
