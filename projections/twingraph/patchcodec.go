package twingraph

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twinlog/twinlog/engine/event"
)

// PatchedSchemaVersion is the payload version of twin.patched events
// written by NewPatchedEvent: a compact binary encoding of TwinPatched
// (the hottest event type), instead of the JSON of SchemaVersion. Decode
// reads both versions, so logs written before it stay readable.
//
// Layout (varints as in encoding/binary; a string is its length and bytes;
// maps in key order):
//
//	id, model, patch, change, count of components, then per component
//	name, flags (1 create, 2 remove), change
//	change: count, (name, value)*; count, unset name*; count, (name, sourceTime)*
const PatchedSchemaVersion uint16 = 2

// NewPatchedEvent returns a twin.patched event on stream with p encoded at
// PatchedSchemaVersion.
func NewPatchedEvent(stream, actor string, p *TwinPatched) event.Event {
	n := 16 + len(p.ID) + len(p.Model) + len(p.Patch) + changeSize(&p.SectionChange)
	for name, c := range p.Components {
		n += 8 + len(name) + changeSize(&c.SectionChange)
	}
	b := make([]byte, 0, n)
	b = appendStr(b, p.ID)
	b = appendStr(b, p.Model)
	b = appendStr(b, p.Patch)
	b = appendChange(b, &p.SectionChange)
	b = binary.AppendUvarint(b, uint64(len(p.Components)))
	for _, name := range sortedKeys(p.Components) {
		c := p.Components[name]
		b = appendStr(b, name)
		var flags byte
		if c.Create {
			flags |= 1
		}
		if c.Remove {
			flags |= 2
		}
		b = append(b, flags)
		b = appendChange(b, &c.SectionChange)
	}
	return event.Event{Stream: stream, Type: TypeTwinPatched, Actor: actor, SchemaVersion: PatchedSchemaVersion, Payload: b}
}

func changeSize(c *SectionChange) int {
	n := 8
	for k, v := range c.Set {
		n += 4 + len(k) + len(v)
	}
	for _, k := range c.Unset {
		n += 2 + len(k)
	}
	for k, v := range c.SourceTimes {
		n += 4 + len(k) + len(v)
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func appendStr[S ~string | ~[]byte](b []byte, s S) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendChange(b []byte, c *SectionChange) []byte {
	b = binary.AppendUvarint(b, uint64(len(c.Set)))
	if len(c.Set) == 1 { // the common case: no sorting
		for k, v := range c.Set {
			b = appendStr(b, k)
			b = appendStr(b, v)
		}
	} else {
		for _, k := range sortedKeys(c.Set) {
			b = appendStr(b, k)
			b = appendStr(b, c.Set[k])
		}
	}
	b = binary.AppendUvarint(b, uint64(len(c.Unset)))
	for _, k := range c.Unset {
		b = appendStr(b, k)
	}
	b = binary.AppendUvarint(b, uint64(len(c.SourceTimes)))
	for _, k := range sortedKeys(c.SourceTimes) {
		b = appendStr(b, k)
		b = appendStr(b, c.SourceTimes[k])
	}
	return b
}

var errPayload = errors.New("malformed payload")

// payloadReader reads the binary payload; the first error sticks.
type payloadReader struct {
	b   []byte
	err error
}

func (r *payloadReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errPayload
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a count of items of at least min bytes each.
func (r *payloadReader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		r.err = errPayload
		return 0
	}
	return int(n)
}

func (r *payloadReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errPayload
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *payloadReader) str() string { return string(r.bytes()) }

func (r *payloadReader) change(c *SectionChange) {
	if n := r.count(2); n > 0 {
		c.Set = make(map[string]json.RawMessage, n)
		for range n {
			k := r.str()
			c.Set[k] = json.RawMessage(r.bytes())
		}
	}
	if n := r.count(1); n > 0 {
		c.Unset = make([]string, 0, n)
		for range n {
			c.Unset = append(c.Unset, r.str())
		}
	}
	if n := r.count(2); n > 0 {
		c.SourceTimes = make(map[string]string, n)
		for range n {
			k := r.str()
			c.SourceTimes[k] = r.str()
		}
	}
}

func decodePatched(data []byte, p *TwinPatched) error {
	r := payloadReader{b: data}
	*p = TwinPatched{ID: r.str(), Model: r.str()}
	if patch := r.bytes(); len(patch) > 0 {
		p.Patch = json.RawMessage(patch)
	}
	r.change(&p.SectionChange)
	if n := r.count(5); n > 0 {
		p.Components = make(map[string]ComponentChange, n)
		for range n {
			name := r.str()
			var c ComponentChange
			if len(r.b) == 0 {
				r.err = errPayload
				break
			}
			flags := r.b[0]
			r.b = r.b[1:]
			c.Create, c.Remove = flags&1 != 0, flags&2 != 0
			r.change(&c.SectionChange)
			p.Components[name] = c
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errPayload
	}
	return r.err
}

// decodeV2 decodes payloads at PatchedSchemaVersion.
func decodeV2(e *event.Event, p any) error {
	tp, ok := p.(*TwinPatched)
	if e.Type != TypeTwinPatched || !ok {
		return fmt.Errorf("%s at %d: schema version %d is only for %s into *TwinPatched", e.Type, e.Position, e.SchemaVersion, TypeTwinPatched)
	}
	if err := decodePatched(e.Payload, tp); err != nil {
		return fmt.Errorf("decode %s at %d: %w", e.Type, e.Position, err)
	}
	return nil
}

// maxFastEntries bounds each kind of entry patchedFast handles.
const maxFastEntries = 8

type payloadKV struct{ k, v []byte }

// dupKeys reports whether two entries of kvs have the same key.
func dupKeys(kvs []payloadKV) bool {
	for i := range kvs {
		for j := range i {
			if string(kvs[i].k) == string(kvs[j].k) {
				return true
			}
		}
	}
	return false
}

// dupNames reports whether two of names are the same.
func dupNames(names [][]byte) bool {
	for i := range names {
		for j := range i {
			if string(names[i]) == string(names[j]) {
				return true
			}
		}
	}
	return false
}

func findKV(kvs []payloadKV, name string) ([]byte, bool) {
	for _, kv := range kvs {
		if string(kv.k) == name {
			return kv.v, true
		}
	}
	return nil, false
}

// patchedFast applies a twin.patched payload at PatchedSchemaVersion to t
// as Patched would, without decoding it into a TwinPatched (maps and a
// string per name): the common case of root properties only, no model
// change, at most maxFastEntries entries of each kind. ok is false, and
// nothing is done, for any other payload (the caller decodes it then,
// which also reports a malformed one). intern returns the shared copy of a
// new property's name.
//
// gen is the caller's write transaction (0 for none). When t belongs to it
// (t.gen == gen), t itself is changed and returned, and so are its
// properties when it owns their array: a twin patched many times in one
// batch is copied once. Otherwise the result is a new twin of gen. A value
// or source time equal to the one it replaces keeps the old string.
func (t *Twin) patchedFast(payload []byte, pos uint64, tm int64, gen uint64, intern func(string) string) (_ *Twin, ok bool) {
	var pe patchEntries
	if !pe.parse(payload) {
		return nil, false
	}
	set, unset, sts := pe.set[:pe.nSet], pe.unset[:pe.nUnset], pe.sts[:pe.nSts]
	nt := t
	if gen == 0 || t.gen != gen {
		nt = t.clone()
		nt.gen = gen
	}
	nt.Version, nt.ETagPos, nt.Updated = pos, pos, tm
	if len(set)+len(unset)+len(sts) == 0 {
		return nt, true
	}
	// In place when nt owns its properties: the loop writes each kept
	// property at or before the index it reads.
	var out []Prop
	if nt.ownProps {
		out = nt.Props[:0]
	} else {
		out = make([]Prop, 0, len(t.Props)+len(set))
	}
	var matched [maxFastEntries]bool
	for _, p := range nt.Props {
		si := findKey(set, p.Name)
		if si >= 0 {
			matched[si] = true // not added, whether set or unset
		}
		if slices.ContainsFunc(unset, func(k []byte) bool { return string(k) == p.Name }) {
			continue
		}
		if si >= 0 {
			if v := set[si].v; string(v) != p.Value {
				p.Value = string(v)
			}
			p.Updated = tm
		}
		if i := findKey(sts, p.Name); i >= 0 {
			if st := sts[i].v; string(st) != p.SourceTime {
				p.SourceTime = string(st)
			}
			p.Updated = tm
		}
		out = append(out, p)
	}
	added := false
	for i, kv := range set {
		if !matched[i] {
			name := intern(string(kv.k))
			st, _ := findKV(sts, name)
			out = append(out, Prop{Name: name, Value: string(kv.v), Updated: tm, SourceTime: string(st)})
			added = true
		}
	}
	if added {
		slices.SortFunc(out, func(a, b Prop) int { return strings.Compare(a.Name, b.Name) })
	}
	nt.Props, nt.ownProps = out, true
	return nt, true
}

// patchEntries are the entries of a twin.patched payload that patchedFast
// takes, aliasing the payload.
type patchEntries struct {
	set, sts           [maxFastEntries]payloadKV
	unset              [maxFastEntries][]byte
	nSet, nUnset, nSts int
}

// parse reads a twin.patched payload at PatchedSchemaVersion into pe and
// reports whether patchedFast takes it: root properties only, no model
// change, at most maxFastEntries entries of each kind, no key twice.
func (pe *patchEntries) parse(payload []byte) bool {
	r := payloadReader{b: payload}
	r.bytes() // id
	if len(r.bytes()) > 0 {
		return false // the model changes
	}
	r.bytes() // the JSON Patch, for notifications and history
	if pe.nSet = r.count(2); pe.nSet > maxFastEntries {
		return false
	}
	for i := range pe.nSet {
		pe.set[i] = payloadKV{r.bytes(), r.bytes()}
	}
	if pe.nUnset = r.count(1); pe.nUnset > maxFastEntries {
		return false
	}
	for i := range pe.nUnset {
		pe.unset[i] = r.bytes()
	}
	if pe.nSts = r.count(2); pe.nSts > maxFastEntries {
		return false
	}
	for i := range pe.nSts {
		pe.sts[i] = payloadKV{r.bytes(), r.bytes()}
	}
	if r.count(5) != 0 || r.err != nil || len(r.b) != 0 {
		return false // components change, or a malformed payload
	}
	// Never written so; decoding keeps the last of each.
	return !dupKeys(pe.set[:pe.nSet]) && !dupKeys(pe.sts[:pe.nSts]) && !dupNames(pe.unset[:pe.nUnset])
}

// findKey returns the index of the entry of kvs with key name, or -1.
func findKey(kvs []payloadKV, name string) int {
	for i, kv := range kvs {
		if string(kv.k) == name {
			return i
		}
	}
	return -1
}
