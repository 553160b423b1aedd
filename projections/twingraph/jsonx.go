package twingraph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/twinlog/twinlog/engine/jsonstr"
)

// DecodeJSON decodes one JSON value with numbers as json.Number, the form
// DTDL validation and canonical encoding expect. Trailing data is an error.
func DecodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("unexpected data after the JSON value")
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("unexpected data after the JSON value")
	}
	return v, nil
}

// AppendJSON appends the canonical compact JSON encoding of v, a value as
// produced by DecodeJSON: object members sorted by name, numbers as written,
// no HTML escaping. Canonical encoding makes stored values and event
// payloads byte-identical across replays.
func AppendJSON(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		if x {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case string:
		return AppendString(dst, x), nil
	case json.Number:
		if !validNumber(string(x)) {
			return nil, fmt.Errorf("invalid number %q", string(x))
		}
		return append(dst, x...), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("unsupported number %v", x)
		}
		return strconv.AppendFloat(dst, x, 'g', -1, 64), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = AppendJSON(dst, e); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, k)
			dst = append(dst, ':')
			var err error
			if dst, err = AppendJSON(dst, x[k]); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	case json.RawMessage:
		return append(dst, x...), nil
	}
	return nil, fmt.Errorf("unsupported JSON value of type %T", v)
}

// Canonical returns the canonical encoding of v.
func Canonical(v any) ([]byte, error) { return AppendJSON(nil, v) }

func validNumber(s string) bool {
	// The grammar of RFC 8259 numbers.
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string (see jsonstr.Append).
func AppendString(dst []byte, s string) []byte { return jsonstr.Append(dst, s) }

// TimeLayout is the timestamp format of twin metadata: RFC 3339 in UTC with
// seven fractional digits, as ADT writes it.
const TimeLayout = "2006-01-02T15:04:05.0000000Z"

// AppendTime appends the metadata form of the Unix-nanosecond time t.
func AppendTime(dst []byte, t int64) []byte {
	secs, nanos := t/1e9, t%1e9
	if nanos < 0 {
		secs, nanos = secs-1, nanos+1e9
	}
	days, rem := secs/86400, secs%86400
	if rem < 0 {
		days, rem = days-1, rem+86400
	}
	y, m, d := civil(days)
	if y < 0 || y > 9999 {
		return time.Unix(0, t).UTC().AppendFormat(dst, TimeLayout)
	}
	var b [28]byte
	put := func(i, n, v int) {
		for j := i + n - 1; j >= i; j-- {
			b[j] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, 4, int(y))
	b[4] = '-'
	put(5, 2, m)
	b[7] = '-'
	put(8, 2, d)
	b[10] = 'T'
	put(11, 2, int(rem/3600))
	b[13] = ':'
	put(14, 2, int(rem/60%60))
	b[16] = ':'
	put(17, 2, int(rem%60))
	b[19] = '.'
	put(20, 7, int(nanos/100))
	b[27] = 'Z'
	return append(dst, b[:]...)
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's algorithm).
func civil(days int64) (y int64, m, d int) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// FormatTime returns the metadata form of the Unix-nanosecond time t.
func FormatTime(t int64) string { return string(AppendTime(nil, t)) }

// ETag returns the weak entity tag of the state written by the event at
// position pos: W/"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx". It is derived only
// from the position, so a replay of the log yields the same tags, and two
// states never share one.
func ETag(pos uint64) string {
	var b [48]byte
	return string(AppendETag(b[:0], pos))
}

// AppendETag appends ETag(pos).
func AppendETag(dst []byte, pos uint64) []byte {
	dst = append(dst, 'W', '/', '"')
	dst = appendUUID(dst, pos)
	return append(dst, '"')
}

// appendETagJSON appends ETag(pos) as a JSON string.
func appendETagJSON(dst []byte, pos uint64) []byte {
	dst = append(dst, `"W/\"`...)
	dst = appendUUID(dst, pos)
	return append(dst, `\""`...)
}

func appendUUID(dst []byte, pos uint64) []byte {
	a, b := mix(pos), mix(pos^0x9e3779b97f4a7c15)
	var u [16]byte
	for i := range 8 {
		u[i] = byte(a >> (56 - 8*i))
		u[8+i] = byte(b >> (56 - 8*i))
	}
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

// mix is the splitmix64 finalizer: a bijection, so distinct positions give
// distinct tags.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
