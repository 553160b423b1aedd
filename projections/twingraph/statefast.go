package twingraph

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"
)

// The JSON payloads of twin.created and twin.replaced (TwinState) and of
// relationship.created and relationship.replaced (RelationshipState) are
// most of a log that builds a graph. The readers below take them as
// NewEvent writes them, straight into a Twin or a RelationshipState
// without encoding/json's reflection and maps, and decline (ok false,
// nothing done) whatever they do not handle exactly as json.Unmarshal
// would: escaped or non-UTF-8 strings, null, keys other than the fields'
// own (encoding/json matches them case-insensitively), a key given twice.
// The caller decodes the payload the usual way then.

// jsonReader reads one JSON document; the first failure sticks.
type jsonReader struct {
	b  []byte
	i  int
	ok bool
}

func (r *jsonReader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// next skips white space and reports whether the next byte is c, taking
// it when it is.
func (r *jsonReader) next(c byte) bool {
	r.ws()
	if r.ok && r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

func (r *jsonReader) expect(c byte) {
	if !r.next(c) {
		r.ok = false
	}
}

// str reads a string without escapes, returning its bytes.
func (r *jsonReader) str() []byte {
	if !r.next('"') {
		r.ok = false
		return nil
	}
	start, ascii := r.i, true
	for ; r.i < len(r.b); r.i++ {
		switch c := r.b[r.i]; {
		case c == '"':
			s := r.b[start:r.i]
			r.i++
			if !ascii && !utf8.Valid(s) {
				r.ok = false
			}
			return s
		case c == '\\' || c < 0x20:
			r.ok = false
			return nil
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	r.ok = false
	return nil
}

// value reads any JSON value but null, returning its bytes.
func (r *jsonReader) value() []byte {
	r.ws()
	if !r.ok || r.i >= len(r.b) {
		r.ok = false
		return nil
	}
	start := r.i
	switch r.b[r.i] {
	case '"':
		r.skipString()
	case '{', '[':
		depth := 0
	scan:
		for r.i < len(r.b) {
			switch r.b[r.i] {
			case '"':
				r.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					r.i++
					break scan
				}
			}
			r.i++
		}
	default: // a number or a literal
	literal:
		for r.i < len(r.b) {
			switch r.b[r.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				break literal
			}
			r.i++
		}
	}
	if r.i > len(r.b) {
		r.ok = false
		return nil
	}
	// The scan only finds the value's end: json.Valid checks it.
	v := r.b[start:r.i]
	if string(v) == "null" || !json.Valid(v) {
		r.ok = false
		return nil
	}
	return v
}

// skipString moves past the string starting at the reader's position,
// escapes included.
func (r *jsonReader) skipString() {
	for r.i++; r.i < len(r.b); r.i++ {
		switch r.b[r.i] {
		case '\\':
			r.i++
		case '"':
			r.i++
			return
		}
	}
	r.i = len(r.b) + 1 // unterminated
}

// object reads an object, calling field for each key with the reader
// positioned at its value.
func (r *jsonReader) object(field func(key []byte)) {
	r.expect('{')
	if r.next('}') {
		return
	}
	for r.ok {
		k := r.str()
		r.expect(':')
		if !r.ok {
			return
		}
		field(k)
		if r.next(',') {
			continue
		}
		r.expect('}')
		return
	}
}

// end checks that nothing but white space follows the document.
func (r *jsonReader) end() bool {
	r.ws()
	return r.ok && r.i == len(r.b)
}

// once marks the key of bit as read in seen, failing the reader (false)
// when it was read before: a key given twice is left to encoding/json.
func (r *jsonReader) once(seen *uint8, bit uint8) bool {
	if *seen&bit != 0 {
		r.ok = false
		return false
	}
	*seen |= bit
	return true
}

// sectionFast reads a section's properties (an object of raw values) or
// its source times (an object of strings) into props, names interned.
// Source times are kept aside in sts until the section is done.
type sectionFast struct {
	props []Prop
	sts   []Prop // Name and SourceTime only
	seen  uint8  // 1 properties, 2 sourceTimes
}

func (s *sectionFast) field(r *jsonReader, key []byte, intern func([]byte) string) bool {
	switch string(key) {
	case "properties":
		if !r.once(&s.seen, 1) {
			return false
		}
		r.object(func(k []byte) {
			v := r.value()
			if r.ok {
				s.props = append(s.props, Prop{Name: intern(k), Value: string(v)})
			}
		})
	case "sourceTimes":
		if !r.once(&s.seen, 2) {
			return false
		}
		r.object(func(k []byte) {
			v := r.str()
			if r.ok {
				s.sts = append(s.sts, Prop{Name: intern(k), SourceTime: string(v)})
			}
		})
	default:
		return false
	}
	return r.ok
}

// section returns the section of the properties read, as sectionFrom
// does, or false when a name is given twice.
func (s *sectionFast) section(tm int64) (Section, bool) {
	sec := Section{Updated: tm}
	if len(s.props) == 0 {
		return sec, !dupNamesSorted(s.sts)
	}
	props := slices.Clone(s.props)
	slices.SortFunc(props, func(a, b Prop) int { return strings.Compare(a.Name, b.Name) })
	if dupNamesSorted(props) || dupNamesSorted(s.sts) {
		return sec, false
	}
	for i := range props {
		props[i].Updated = tm
	}
	for _, st := range s.sts {
		if i, ok := slices.BinarySearchFunc(props, st.Name, func(p Prop, n string) int { return strings.Compare(p.Name, n) }); ok {
			props[i].SourceTime = st.SourceTime
		}
	}
	sec.Props = props
	return sec, true
}

// dupNamesSorted reports whether two of props have the same name, sorting
// them by name.
func dupNamesSorted(props []Prop) bool {
	if len(props) < 2 {
		return false
	}
	slices.SortFunc(props, func(a, b Prop) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(props); i++ {
		if props[i].Name == props[i-1].Name {
			return true
		}
	}
	return false
}

// newTwinFast returns NewTwin of the TwinState payload data, written by
// the event at pos and time tm, but for its ID, which it leaves empty; its
// names are interned. ok is false when the payload is not one it reads
// (see above).
func newTwinFast(data []byte, pos uint64, tm int64, intern func([]byte) string) (_ *Twin, ok bool) {
	r := jsonReader{b: data, ok: true}
	t := &Twin{Version: pos, ETagPos: pos}
	var root sectionFast
	var comps []Component
	var seen uint8 // 1 id, 2 model, 4 components
	r.object(func(k []byte) {
		switch string(k) {
		case "id":
			if r.once(&seen, 1) {
				r.str() // the caller knows the id from the stream
			}
		case "model":
			if r.once(&seen, 2) {
				t.Model = string(r.str())
			}
		case "components":
			if !r.once(&seen, 4) {
				return
			}
			r.object(func(name []byte) {
				var cs sectionFast
				r.object(func(k []byte) {
					if !cs.field(&r, k, intern) {
						r.ok = false
					}
				})
				if !r.ok {
					return
				}
				sec, ok := cs.section(tm)
				if !ok {
					r.ok = false
					return
				}
				comps = append(comps, Component{Name: intern(name), Section: sec})
			})
		default:
			if !root.field(&r, k, intern) {
				r.ok = false
			}
		}
	})
	if !r.end() {
		return nil, false
	}
	sec, ok := root.section(tm)
	if !ok {
		return nil, false
	}
	t.Section = sec
	if len(comps) > 0 {
		slices.SortFunc(comps, func(a, b Component) int { return strings.Compare(a.Name, b.Name) })
		for i := 1; i < len(comps); i++ {
			if comps[i].Name == comps[i-1].Name {
				return nil, false
			}
		}
		t.Components = comps
	}
	return t, true
}

// relationshipFast reads the RelationshipState payload data into p, but
// for Source, which it leaves empty, and with Name interned; it reports
// false when the payload is not one it reads (see above).
func relationshipFast(data []byte, p *RelationshipState, intern func([]byte) string) bool {
	r := jsonReader{b: data, ok: true}
	var seen uint8
	once := func(bit uint8) bool { return r.once(&seen, bit) }
	r.object(func(k []byte) {
		switch string(k) {
		case "source":
			if once(1) {
				r.str() // the caller knows the source from the stream
			}
		case "id":
			if once(2) {
				p.ID = string(r.str())
			}
		case "name":
			if once(4) {
				if n := r.str(); r.ok {
					p.Name = intern(n)
				}
			}
		case "target":
			if once(8) {
				p.Target = string(r.str())
			}
		case "properties":
			if once(16) {
				if v := r.value(); r.ok {
					p.Properties = json.RawMessage(v)
				}
			}
		default:
			r.ok = false
		}
	})
	return r.end()
}

// telemetryFast reads the Telemetry payload data into p, but for Twin,
// which it leaves empty, and with Body aliasing data; it reports false
// when the payload is not one it reads (see above).
func telemetryFast(data []byte, p *Telemetry) bool {
	r := jsonReader{b: data, ok: true}
	var seen uint8
	once := func(bit uint8) bool { return r.once(&seen, bit) }
	r.object(func(k []byte) {
		switch string(k) {
		case "twin":
			if once(1) {
				r.str() // the caller knows the twin from the stream
			}
		case "component":
			if once(2) {
				p.Component = string(r.str())
			}
		case "messageId":
			if once(4) {
				p.MessageID = string(r.str())
			}
		case "sourceTime":
			if once(8) {
				p.SourceTime = string(r.str())
			}
		case "body":
			if once(16) {
				if v := r.value(); r.ok {
					p.Body = json.RawMessage(v)
				}
			}
		default:
			r.ok = false
		}
	})
	return r.end()
}
