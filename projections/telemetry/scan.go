package telemetry

import (
	"bytes"
	"encoding/json"
	"math"
	"unicode/utf8"
	"unsafe"

	"github.com/twinlog/twinlog/engine/jsonnum"
)

// member is one top-level member of a telemetry body with a numeric or
// boolean value; name aliases the body unless it had escapes.
type member struct {
	name []byte
	raw  []byte // the value's JSON text, aliasing the body
	num  bool   // the value is a number or a boolean, in v
	v    float64
}

// scanObject appends the top-level members of the JSON object body to dst.
// Members whose values are strings, nulls, objects or arrays are appended
// with num false. ok is false for anything but one well-formed object
// (followed only by whitespace). It allocates only for names with escapes.
func scanObject(dst []member, body []byte) (_ []member, ok bool) {
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return dst, false
	}
	i = skipWS(body, i+1)
	if i < len(body) && body[i] == '}' {
		return dst, skipWS(body, i+1) == len(body)
	}
	for {
		if i >= len(body) || body[i] != '"' {
			return dst, false
		}
		end, esc, ok := scanString(body, i)
		if !ok {
			return dst, false
		}
		name := body[i+1 : end-1]
		if esc || !utf8.Valid(name) {
			// Decoded as encoding/json does (invalid UTF-8 becomes U+FFFD).
			var s string
			if json.Unmarshal(body[i:end], &s) != nil {
				return dst, false
			}
			name = []byte(s)
		}
		i = skipWS(body, end)
		if i >= len(body) || body[i] != ':' {
			return dst, false
		}
		i = skipWS(body, i+1)
		vEnd, ok := skipValue(body, i, 0)
		if !ok {
			return dst, false
		}
		m := member{name: name, raw: body[i:vEnd]}
		switch raw := body[i:vEnd]; raw[0] {
		case 't':
			m.num, m.v = true, 1
		case 'f':
			m.num, m.v = true, 0
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			if v, ok := jsonnum.ParseFloat(unsafe.String(unsafe.SliceData(raw), len(raw))); ok && !math.IsInf(v, 0) {
				m.num, m.v = true, v
			}
		}
		dst = append(dst, m)
		i = skipWS(body, vEnd)
		if i >= len(body) {
			return dst, false
		}
		switch body[i] {
		case ',':
			i = skipWS(body, i+1)
		case '}':
			return dst, skipWS(body, i+1) == len(body)
		default:
			return dst, false
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the end (one past the closing quote) of the string
// starting at b[i] == '"', and whether it has escapes.
func scanString(b []byte, i int) (end int, esc, ok bool) {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, esc, true
		case c == '\\':
			esc = true
			j++
		case c < 0x20:
			return 0, false, false
		}
	}
	return 0, false, false
}

// maxScanDepth bounds nesting inside one value.
const maxScanDepth = 64

// skipValue returns the end of the JSON value starting at b[i]. Numbers
// and literals are checked only loosely here; numbers are parsed by the
// caller and bad ones are not kept.
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxScanDepth {
		return 0, false
	}
	switch c := b[i]; c {
	case '"':
		end, _, ok := scanString(b, i)
		return end, ok
	case '{', '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, true
		}
		for {
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, false
				}
				end, _, ok := scanString(b, i)
				if !ok {
					return 0, false
				}
				i = skipWS(b, end)
				if i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i = skipWS(b, i+1)
			}
			end, ok := skipValue(b, i, depth+1)
			if !ok {
				return 0, false
			}
			i = skipWS(b, end)
			if i >= len(b) {
				return 0, false
			}
			if b[i] == closer {
				return i + 1, true
			}
			if b[i] != ',' {
				return 0, false
			}
			i = skipWS(b, i+1)
		}
	case 't', 'f', 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
				return i + len(lit), true
			}
		}
		return 0, false
	default:
		j := i
		for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || (b[j] >= '0' && b[j] <= '9')) {
			j++
		}
		if j == i {
			return 0, false
		}
		return j, true
	}
}

// decodeTelemetry reads a twingraph.Telemetry payload (JSON at
// twingraph.SchemaVersion) with scanObject; ok is false when it is not one
// the scan can read, and the caller falls back to twingraph.Decode. body
// aliases the payload.
func decodeTelemetry(scratch []member, payload []byte) (_ []member, twin, component, sourceTime string, body []byte, ok bool) {
	ms, ok := scanObject(scratch[:0], payload)
	if !ok {
		return ms, "", "", "", nil, false
	}
	for i := range ms {
		m := &ms[i]
		var dst *string
		switch string(m.name) {
		case "twin":
			dst = &twin
		case "component":
			dst = &component
		case "sourceTime":
			dst = &sourceTime
		case "body":
			body = m.raw
			continue
		default:
			// encoding/json matches names case-insensitively: leave such
			// payloads to it.
			for _, k := range []string{"twin", "component", "sourceTime", "body"} {
				if bytes.EqualFold(m.name, []byte(k)) {
					return ms, "", "", "", nil, false
				}
			}
			continue
		}
		if m.raw[0] != '"' {
			return ms, "", "", "", nil, false
		}
		if str := m.raw[1 : len(m.raw)-1]; !bytes.ContainsRune(str, '\\') && utf8.Valid(str) {
			*dst = string(str)
		} else if json.Unmarshal(m.raw, dst) != nil {
			return ms, "", "", "", nil, false
		}
	}
	return ms, twin, component, sourceTime, body, body != nil
}
