package ingest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"unicode/utf8"
	"unsafe"

	"github.com/twinlog/twinlog/engine/jsonstr"
)

// Point is one telemetry point as decoded from a request. Its slices alias
// the request body; a Point is valid only while the body is.
type Point struct {
	// Index is the point's 0-based place in the request (array element or
	// NDJSON line), used in rejection reports.
	Index int
	// Twin and Device name the point's source; exactly one is set.
	Twin, Device string
	// Component is the component the telemetry belongs to, "" for the root.
	Component string
	// Time is the point's source time (RFC 3339), "" when absent.
	Time string
	// MessageID is the caller's id of the point, "" when absent.
	MessageID string
	// Fields are the telemetry values in the order given.
	Fields []Field
}

// Field is one telemetry value of a Point.
type Field struct {
	Name string
	// RawName is the member name's JSON string literal, quotes included.
	RawName []byte
	// Raw is the value's JSON text, exactly as received.
	Raw []byte
	// Kind is the JSON kind of Raw.
	Kind Kind
}

// Kind is the kind of a JSON value.
type Kind uint8

// JSON value kinds.
const (
	KindNull Kind = iota + 1
	KindBool
	KindNumber
	KindString
	KindObject
	KindArray
)

// Reserved member names of a point; every other member is a telemetry value.
const (
	keyTwin      = "twinId"
	keyDevice    = "deviceId"
	keyTime      = "time"
	keyMessageID = "messageId"
	keyComponent = "component"
)

// maxDepth bounds nesting inside one value.
const maxDepth = 64

// ErrSyntax is wrapped by decoding errors of malformed input.
var ErrSyntax = errors.New("ingest: malformed JSON")

// Decode splits body into points and calls fn for each well-formed one, in
// order. body is a JSON array of point objects, or NDJSON (one object per
// line; a single object is NDJSON of one line). In NDJSON a malformed line is
// reported to bad with its index and the rest is decoded; in an array the
// first syntax error ends decoding and is returned. Points handed to fn alias
// body and reuse their Fields slice between calls: fn must copy what it keeps.
func Decode(body []byte, fn func(p *Point), bad func(index int, err error)) error {
	d := decoder{b: body}
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '[' {
		return d.array(fn)
	}
	return d.lines(fn, bad)
}

type decoder struct {
	b []byte
	i int
	p Point
	// esc reports whether the last string str read had escapes.
	esc bool
}

func (d *decoder) errf(format string, args ...any) error {
	return fmt.Errorf("%w at byte %d: %s", ErrSyntax, d.i, fmt.Sprintf(format, args...))
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\r', '\n':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) array(fn func(p *Point)) error {
	d.i++ // [
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return d.end()
	}
	for idx := 0; ; idx++ {
		if err := d.object(idx); err != nil {
			return fmt.Errorf("point %d: %w", idx, err)
		}
		fn(&d.p)
		d.ws()
		if d.i >= len(d.b) {
			return d.errf("unterminated array")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
			d.ws()
		case ']':
			d.i++
			return d.end()
		default:
			return d.errf("expected , or ] after point %d", idx)
		}
	}
}

func (d *decoder) end() error {
	d.ws()
	if d.i != len(d.b) {
		return d.errf("data after the array")
	}
	return nil
}

func (d *decoder) lines(fn func(p *Point), bad func(int, error)) error {
	full := d.b
	defer func() { d.b = full }()
	for idx := 0; d.i < len(full); {
		// Each line is decoded on its own: a malformed line cannot swallow
		// the next one.
		end := bytes.IndexByte(full[d.i:], '\n')
		if end < 0 {
			end = len(full)
		} else {
			end += d.i
		}
		d.b = full[:end]
		d.ws()
		if d.i >= end {
			d.i = end + 1
			continue
		}
		err := d.object(idx)
		if err == nil {
			d.ws()
			if d.i < end {
				err = d.errf("data after the object on its line")
			}
		}
		if err != nil {
			bad(idx, err)
		} else {
			fn(&d.p)
		}
		d.i = end + 1
		idx++
	}
	return nil
}

func (d *decoder) object(idx int) error {
	p := &d.p
	fields := p.Fields[:0]
	*p = Point{Index: idx}
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return d.errf("a point must be a JSON object")
	}
	d.i++
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		p.Fields = fields
		return nil
	}
	for {
		d.ws()
		kstart := d.i
		key, err := d.key()
		if err != nil {
			return err
		}
		rawKey := d.b[kstart:d.i]
		d.ws()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return d.errf("expected : after member name")
		}
		d.i++
		d.ws()
		start := d.i
		kind, err := d.value(0)
		if err != nil {
			return err
		}
		raw := d.b[start:d.i]
		var dst *string
		switch key {
		case keyTwin:
			dst = &p.Twin
		case keyDevice:
			dst = &p.Device
		case keyTime:
			dst = &p.Time
		case keyMessageID:
			dst = &p.MessageID
		case keyComponent:
			dst = &p.Component
		}
		if dst != nil {
			if kind != KindString {
				return fmt.Errorf("%w: %q must be a string", ErrSyntax, key)
			}
			s, err := d.text(raw)
			if err != nil {
				return d.errf("%v", err)
			}
			*dst = s
		} else {
			fields = append(fields, Field{Name: key, RawName: rawKey, Raw: raw, Kind: kind})
		}
		d.ws()
		if d.i >= len(d.b) {
			return d.errf("unterminated object")
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			p.Fields = fields
			return nil
		default:
			return d.errf("expected , or } in object")
		}
	}
}

func (d *decoder) key() (string, error) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", d.errf("expected a member name")
	}
	start := d.i
	if err := d.str(); err != nil {
		return "", err
	}
	return d.text(d.b[start:d.i])
}

// text returns the string of raw, the literal str just read: a view of it
// when it had no escapes, without scanning it again.
func (d *decoder) text(raw []byte) (string, error) {
	if d.esc {
		return unquote(raw)
	}
	inner := raw[1 : len(raw)-1]
	return unsafe.String(unsafe.SliceData(inner), len(inner)), nil
}

// unquote returns the string of a JSON string literal known to be well
// formed. Without escapes the string aliases raw.
func unquote(raw []byte) (string, error) {
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", err
			}
			return s, nil
		}
	}
	// The body outlives every use of the points (see Decode).
	return unsafe.String(unsafe.SliceData(inner), len(inner)), nil
}

// str consumes a string literal, checking escapes and UTF-8, and sets
// d.esc to whether it has escapes. Runs of plain ASCII are skipped eight
// bytes at a time.
func (d *decoder) str() error {
	d.i++ // "
	d.esc = false
	for d.i < len(d.b) {
		for d.i+8 <= len(d.b) {
			if m := jsonstr.Special8(binary.LittleEndian.Uint64(d.b[d.i:])); m != 0 {
				d.i += bits.TrailingZeros64(m) / 8
				break
			}
			d.i += 8
		}
		if d.i >= len(d.b) {
			break
		}
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return nil
		case c == '\\':
			d.esc = true
			if d.i+1 >= len(d.b) {
				return d.errf("unterminated string")
			}
			switch d.b[d.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i += 2
			case 'u':
				if d.i+6 > len(d.b) {
					return d.errf("short \\u escape")
				}
				for _, h := range d.b[d.i+2 : d.i+6] {
					if !isHex(h) {
						return d.errf("bad \\u escape")
					}
				}
				d.i += 6
			default:
				return d.errf("bad escape")
			}
		case c < 0x20:
			return d.errf("control character in string")
		case c < utf8.RuneSelf:
			d.i++
		default:
			r, n := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && n == 1 {
				return d.errf("invalid UTF-8 in string")
			}
			d.i += n
		}
	}
	return d.errf("unterminated string")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// value consumes one JSON value and returns its kind.
func (d *decoder) value(depth int) (Kind, error) {
	if depth > maxDepth {
		return 0, d.errf("value nests deeper than %d", maxDepth)
	}
	if d.i >= len(d.b) {
		return 0, d.errf("unexpected end of input")
	}
	switch c := d.b[d.i]; {
	case c == '"':
		return KindString, d.str()
	case c == '-' || isDigit(c):
		return KindNumber, d.number()
	case c == '{':
		d.i++
		d.ws()
		if d.i < len(d.b) && d.b[d.i] == '}' {
			d.i++
			return KindObject, nil
		}
		for {
			d.ws()
			if d.i >= len(d.b) || d.b[d.i] != '"' {
				return 0, d.errf("expected a member name")
			}
			if err := d.str(); err != nil {
				return 0, err
			}
			d.ws()
			if d.i >= len(d.b) || d.b[d.i] != ':' {
				return 0, d.errf("expected :")
			}
			d.i++
			d.ws()
			if _, err := d.value(depth + 1); err != nil {
				return 0, err
			}
			d.ws()
			if d.i >= len(d.b) {
				return 0, d.errf("unterminated object")
			}
			if d.b[d.i] == '}' {
				d.i++
				return KindObject, nil
			}
			if d.b[d.i] != ',' {
				return 0, d.errf("expected , or }")
			}
			d.i++
		}
	case c == '[':
		d.i++
		d.ws()
		if d.i < len(d.b) && d.b[d.i] == ']' {
			d.i++
			return KindArray, nil
		}
		for {
			d.ws()
			if _, err := d.value(depth + 1); err != nil {
				return 0, err
			}
			d.ws()
			if d.i >= len(d.b) {
				return 0, d.errf("unterminated array")
			}
			if d.b[d.i] == ']' {
				d.i++
				return KindArray, nil
			}
			if d.b[d.i] != ',' {
				return 0, d.errf("expected , or ]")
			}
			d.i++
		}
	default:
		for _, lit := range [...]struct {
			s string
			k Kind
		}{{"true", KindBool}, {"false", KindBool}, {"null", KindNull}} {
			if len(d.b)-d.i >= len(lit.s) && string(d.b[d.i:d.i+len(lit.s)]) == lit.s {
				d.i += len(lit.s)
				return lit.k, nil
			}
		}
		return 0, d.errf("unexpected character %q", c)
	}
}

// number consumes a number per RFC 8259.
func (d *decoder) number() error {
	if d.b[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.b) && d.b[d.i] == '0':
		d.i++
	case d.i < len(d.b) && isDigit(d.b[d.i]):
		for d.i < len(d.b) && isDigit(d.b[d.i]) {
			d.i++
		}
	default:
		return d.errf("bad number")
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if d.i >= len(d.b) || !isDigit(d.b[d.i]) {
			return d.errf("bad number")
		}
		for d.i < len(d.b) && isDigit(d.b[d.i]) {
			d.i++
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if d.i >= len(d.b) || !isDigit(d.b[d.i]) {
			return d.errf("bad number")
		}
		for d.i < len(d.b) && isDigit(d.b[d.i]) {
			d.i++
		}
	}
	return nil
}
