package twingraph

import (
	"math"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
)

// Prop is one set property of a twin or component. It is immutable.
type Prop struct {
	Name string
	// Value is the canonical JSON encoding of the value.
	Value string
	// Updated is the lastUpdateTime, Unix nanoseconds (an event time).
	Updated int64
	// SourceTime is the writable sourceTime metadata, "" when unset.
	SourceTime string
}

// Section is the properties of a twin's root or of one of its components.
type Section struct {
	// Props are sorted by name.
	Props []Prop
	// Updated is the section's $lastUpdateTime.
	Updated int64
}

// Prop returns the property with the given name.
func (s *Section) Prop(name string) (*Prop, bool) {
	i, ok := slices.BinarySearchFunc(s.Props, name, func(p Prop, n string) int { return strings.Compare(p.Name, n) })
	if !ok {
		return nil, false
	}
	return &s.Props[i], true
}

// Component is one component of a twin.
type Component struct {
	Name string
	Section
}

// Twin is a digital twin as stored in the graph. A Twin is immutable once
// inserted: every change makes a new one, so snapshots stay consistent.
type Twin struct {
	ID    string
	Model string
	// Version is the version of the twin's stream (the position of its
	// last event, including relationship events and markers): the
	// expectation for the next write.
	Version uint64
	// ETagPos is the position of the event that last changed the twin
	// itself; the ETag derives from it.
	ETagPos uint64
	Section
	// Components are sorted by name.
	Components []Component
	// Out are the twin's relationships, sorted by ID.
	Out []*Relationship
	// In are the relationships targeting the twin, sorted by Source and ID.
	In []*Relationship

	// gen is the write transaction (a btxn's gen) that made this value and
	// may change it in place until it commits: no snapshot can see the
	// twin before then. 0 for none. See applier.mutable.
	gen uint64
	// ownProps is set when Props's array was made for this value alone
	// (not shared with an older value), so that the transaction of gen may
	// also change the properties in place. Every copy of a Twin clears it.
	ownProps bool
	// owner is the id of the graph whose writer made this value (see
	// Graph.id), 0 for none. Only that graph's snapshots trust its
	// replaced mark and the relationship hints that point to it: a fork
	// shares its parent's values but not their future.
	owner uint32
	// replaced is the gen of the owner graph's transaction that replaced
	// or deleted this value, 0 while it is current there. The writer sets
	// it before publishing that transaction's snapshot.
	replaced atomic.Uint64
}

// clone returns a copy of t that is not replaced and does not own its
// properties, for the writer to change.
func (t *Twin) clone() *Twin {
	return &Twin{ID: t.ID, Model: t.Model, Version: t.Version, ETagPos: t.ETagPos, Section: t.Section,
		Components: t.Components, Out: t.Out, In: t.In, gen: t.gen, owner: t.owner}
}

// hintable reports whether relationships may point their hints at t in
// graph owner: t is that graph's current value, with few enough incoming
// relationships for the writer to keep their hints up to date.
func (t *Twin) hintable(owner uint32) bool {
	return owner != 0 && t.owner == owner && len(t.In) <= hintMaxIn && t.replaced.Load() == 0
}

// currentAt reports whether t is the value of its twin in a snapshot of
// graph owner published after its transaction gen (Snapshot.gen): t was
// made by a transaction no later than gen, and not replaced by one.
func (t *Twin) currentAt(owner uint32, gen uint64) bool {
	if t.owner != owner || owner == 0 || t.gen > gen {
		return false
	}
	r := t.replaced.Load()
	return r == 0 || r > gen
}

// Outgoing returns the twin's relationship with the given id.
func (t *Twin) Outgoing(id string) (*Relationship, bool) {
	i, ok := slices.BinarySearchFunc(t.Out, id, func(r *Relationship, id string) int { return strings.Compare(r.ID, id) })
	if !ok {
		return nil, false
	}
	return t.Out[i], true
}

func outCmp(a, b *Relationship) int { return strings.Compare(a.ID, b.ID) }

func inCmp(a, b *Relationship) int {
	if c := strings.Compare(a.Source, b.Source); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// withRel returns a copy of list with r inserted, or replacing the entry
// that compares equal.
func withRel(list []*Relationship, r *Relationship, cmp func(a, b *Relationship) int) []*Relationship {
	i, found := slices.BinarySearchFunc(list, r, cmp)
	if found {
		out := slices.Clone(list)
		out[i] = r
		return out
	}
	out := make([]*Relationship, 0, len(list)+1)
	out = append(out, list[:i]...)
	out = append(out, r)
	return append(out, list[i:]...)
}

// withoutRel returns a copy of list without the entry comparing equal to r.
func withoutRel(list []*Relationship, r *Relationship, cmp func(a, b *Relationship) int) []*Relationship {
	i, found := slices.BinarySearchFunc(list, r, cmp)
	if !found {
		return list
	}
	if len(list) == 1 {
		return nil
	}
	out := make([]*Relationship, 0, len(list)-1)
	out = append(out, list[:i]...)
	return append(out, list[i+1:]...)
}

// ETag returns the twin's weak entity tag.
func (t *Twin) ETag() string { return ETag(t.ETagPos) }

// Component returns the component with the given name.
func (t *Twin) Component(name string) (*Component, bool) {
	i, ok := slices.BinarySearchFunc(t.Components, name, func(c Component, n string) int { return strings.Compare(c.Name, n) })
	if !ok {
		return nil, false
	}
	return &t.Components[i], true
}

// AppendJSON appends the twin's ADT JSON representation: $dtId, $etag, the
// properties, the components with their own $metadata, and $metadata with
// $model, $lastUpdateTime and every property's lastUpdateTime and
// sourceTime.
func (t *Twin) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"$dtId":`...)
	dst = AppendString(dst, t.ID)
	dst = append(dst, `,"$etag":`...)
	dst = appendETagJSON(dst, t.ETagPos)
	var names quotedNames
	for i := range t.Props {
		p := &t.Props[i]
		dst = append(dst, ',')
		dst = names.append(dst, i, p.Name)
		dst = append(dst, ':')
		dst = append(dst, p.Value...)
	}
	for i := range t.Components {
		c := &t.Components[i]
		dst = append(dst, ',')
		dst = AppendString(dst, c.Name)
		dst = append(dst, ':')
		dst = c.appendJSON(dst)
	}
	dst = append(dst, `,"$metadata":{"$model":`...)
	dst = AppendString(dst, t.Model)
	dst = t.appendMeta(dst, &names)
	return append(dst, "}}"...)
}

// Prefetch reads the first byte of the twin's id and of each of its
// property values, and returns their sum. Called for several twins in a
// row, it brings them into the cache with their misses overlapped, before
// they are read one at a time (see query.Prefetcher).
func (t *Twin) Prefetch() uint {
	n := uint(len(t.ID))
	if n > 0 {
		n += uint(t.ID[0])
	}
	n += t.Section.prefetch()
	for i := range t.Components {
		n += t.Components[i].prefetch()
	}
	return n
}

func (s *Section) prefetch() uint {
	var n uint
	for i := range s.Props {
		if v := s.Props[i].Value; v != "" {
			n += uint(v[0])
		}
	}
	return n
}

// AppendComponentJSON appends the JSON of the named component, as returned
// by ADT's GetComponent.
func (t *Twin) AppendComponentJSON(dst []byte, name string) ([]byte, bool) {
	c, ok := t.Component(name)
	if !ok {
		return dst, false
	}
	return c.appendJSON(dst), true
}

func (s *Section) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	var names quotedNames
	for i := range s.Props {
		p := &s.Props[i]
		dst = names.append(dst, i, p.Name)
		dst = append(dst, ':')
		dst = append(dst, p.Value...)
		dst = append(dst, ',')
	}
	dst = append(dst, `"$metadata":{"$lastUpdateTime":"`...)
	tm := timeMemo{t: s.Updated, at: len(dst)}
	dst = AppendTime(dst, s.Updated)
	tm.n = len(dst) - tm.at
	dst = append(dst, '"')
	dst = s.appendPropMeta(dst, tm, &names)
	return append(dst, "}}"...)
}

func (s *Section) appendMeta(dst []byte, names *quotedNames) []byte {
	dst = append(dst, `,"$lastUpdateTime":"`...)
	tm := timeMemo{t: s.Updated, at: len(dst)}
	dst = AppendTime(dst, s.Updated)
	tm.n = len(dst) - tm.at
	dst = append(dst, '"')
	return s.appendPropMeta(dst, tm, names)
}

// quotedNames records where a section's property names were appended as
// JSON strings, so that its $metadata, which names each property again,
// copies them rather than encoding them twice. It holds the first 32.
type quotedNames struct {
	at [32][2]int32 // start and end in dst
}

// append appends name, the name of property i, as a JSON string.
func (q *quotedNames) append(dst []byte, i int, name string) []byte {
	start := len(dst)
	dst = AppendString(dst, name)
	if i < len(q.at) && len(dst) <= math.MaxInt32 {
		q.at[i] = [2]int32{int32(start), int32(len(dst))}
	}
	return dst
}

// again appends name, the name of property i, as append did before.
func (q *quotedNames) again(dst []byte, i int, name string) []byte {
	if i < len(q.at) {
		if at := q.at[i]; at[1] > at[0] {
			return append(dst, dst[at[0]:at[1]]...)
		}
	}
	return AppendString(dst, name)
}

// timeMemo is where a time was last appended to a buffer: properties
// mostly share their section's time, and copying it beats formatting it.
type timeMemo struct {
	t     int64
	at, n int
}

func (m *timeMemo) append(dst []byte, t int64) []byte {
	if t == m.t && m.n > 0 {
		return append(dst, dst[m.at:m.at+m.n]...)
	}
	m.t, m.at = t, len(dst)
	dst = AppendTime(dst, t)
	m.n = len(dst) - m.at
	return dst
}

func (s *Section) appendPropMeta(dst []byte, tm timeMemo, names *quotedNames) []byte {
	for i := range s.Props {
		p := &s.Props[i]
		dst = append(dst, ',')
		dst = names.again(dst, i, p.Name)
		dst = append(dst, `:{"lastUpdateTime":"`...)
		dst = tm.append(dst, p.Updated)
		dst = append(dst, '"')
		if p.SourceTime != "" {
			dst = append(dst, `,"sourceTime":`...)
			dst = AppendString(dst, p.SourceTime)
		}
		dst = append(dst, '}')
	}
	return dst
}

func sectionFrom(st *SectionState, t int64) Section {
	s := Section{Updated: t}
	if len(st.Properties) > 0 {
		s.Props = make([]Prop, 0, len(st.Properties))
		for name, v := range st.Properties {
			s.Props = append(s.Props, Prop{Name: name, Value: string(v), Updated: t, SourceTime: st.SourceTimes[name]})
		}
		sort.Slice(s.Props, func(i, j int) bool { return s.Props[i].Name < s.Props[j].Name })
	}
	return s
}

// NewTwin returns the twin described by st, written by the event at pos
// and time t (twin.created or twin.replaced).
func NewTwin(st *TwinState, pos uint64, t int64) *Twin {
	tw := &Twin{ID: st.ID, Model: st.Model, Version: pos, ETagPos: pos, Section: sectionFrom(&st.SectionState, t)}
	if len(st.Components) > 0 {
		tw.Components = make([]Component, 0, len(st.Components))
		for name, cs := range st.Components {
			tw.Components = append(tw.Components, Component{Name: name, Section: sectionFrom(&cs, t)})
		}
		sort.Slice(tw.Components, func(i, j int) bool { return tw.Components[i].Name < tw.Components[j].Name })
	}
	return tw
}

// Patched returns a new twin: t with the effect of p, written by the event
// at pos and time tm. t is not modified.
func (t *Twin) Patched(p *TwinPatched, pos uint64, tm int64) *Twin {
	n := t.clone()
	n.Version, n.ETagPos, n.Updated = pos, pos, tm
	if p.Model != "" {
		n.Model = p.Model
	}
	n.Props = p.SectionChange.apply(t.Props, tm)
	if len(p.Components) > 0 {
		comps := make([]Component, 0, len(t.Components)+len(p.Components))
		for _, c := range t.Components {
			ch, ok := p.Components[c.Name]
			switch {
			case !ok:
				comps = append(comps, c)
			case ch.Remove:
			default:
				comps = append(comps, Component{Name: c.Name, Section: Section{Props: ch.apply(c.Props, tm), Updated: tm}})
			}
		}
		for name, ch := range p.Components {
			if ch.Create && !ch.Remove {
				if _, exists := t.Component(name); !exists {
					comps = append(comps, Component{Name: name, Section: Section{Props: ch.apply(nil, tm), Updated: tm}})
				}
			}
		}
		sort.Slice(comps, func(i, j int) bool { return comps[i].Name < comps[j].Name })
		n.Components = comps
	}
	return n
}

// apply returns props with the change applied; props is not modified.
func (c *SectionChange) apply(props []Prop, tm int64) []Prop {
	if len(c.Set) == 0 && len(c.Unset) == 0 && len(c.SourceTimes) == 0 {
		return props
	}
	out := make([]Prop, 0, len(props)+len(c.Set))
	for _, p := range props {
		if slices.Contains(c.Unset, p.Name) {
			continue
		}
		if v, ok := c.Set[p.Name]; ok {
			p.Value, p.Updated = string(v), tm
		}
		if st, ok := c.SourceTimes[p.Name]; ok {
			p.SourceTime, p.Updated = st, tm
		}
		out = append(out, p)
	}
	added := false
	for name, v := range c.Set {
		if !hasProp(props, name) {
			out = append(out, Prop{Name: name, Value: string(v), Updated: tm, SourceTime: c.SourceTimes[name]})
			added = true
		}
	}
	if added {
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	}
	return out
}

func hasProp(props []Prop, name string) bool {
	_, ok := slices.BinarySearchFunc(props, name, func(p Prop, n string) int { return strings.Compare(p.Name, n) })
	return ok
}

// Relationship is a directed, named edge from Source to Target. It is
// immutable once inserted.
type Relationship struct {
	Source string
	ID     string
	Name   string
	Target string
	// Props is the canonical JSON object of its properties, "" for none.
	Props string
	// ETagPos is the position of the event that last changed it.
	ETagPos uint64

	// target is a hint: a value of the target twin, set by the writer of
	// the target's owner graph (or by a reader, when unset), so that a
	// step from source to target need not look the target up by id. A
	// reader uses it only when it is current in the reader's snapshot
	// (Twin.currentAt).
	target atomic.Pointer[Twin]
}

// hintMaxIn is the most relationships a twin may have pointing to it for
// the writer to refresh their hints each time it changes the twin: a hub
// with thousands of incoming relationships is looked up by id instead.
const hintMaxIn = 64

// ETag returns the relationship's weak entity tag.
func (r *Relationship) ETag() string { return ETag(r.ETagPos) }

// AppendJSON appends the ADT relationship JSON: $relationshipId, $etag,
// $sourceId, $relationshipName, $targetId and the properties.
func (r *Relationship) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"$relationshipId":`...)
	dst = AppendString(dst, r.ID)
	dst = append(dst, `,"$etag":`...)
	dst = appendETagJSON(dst, r.ETagPos)
	dst = append(dst, `,"$sourceId":`...)
	dst = AppendString(dst, r.Source)
	dst = append(dst, `,"$relationshipName":`...)
	dst = AppendString(dst, r.Name)
	dst = append(dst, `,"$targetId":`...)
	dst = AppendString(dst, r.Target)
	if len(r.Props) > 2 {
		dst = append(dst, ',')
		dst = append(dst, r.Props[1:len(r.Props)-1]...)
	}
	return append(dst, '}')
}

// AppendIncomingJSON appends ADT's IncomingRelationship JSON.
func (r *Relationship) AppendIncomingJSON(dst []byte) []byte {
	dst = append(dst, `{"$relationshipId":`...)
	dst = AppendString(dst, r.ID)
	dst = append(dst, `,"$sourceId":`...)
	dst = AppendString(dst, r.Source)
	dst = append(dst, `,"$relationshipName":`...)
	dst = AppendString(dst, r.Name)
	dst = append(dst, `,"$relationshipLink":`...)
	dst = AppendString(dst, "/digitaltwins/"+r.Source+"/relationships/"+r.ID)
	return append(dst, '}')
}

// PropsMap decodes the relationship's properties.
func (r *Relationship) PropsMap() (map[string]any, error) {
	m := map[string]any{}
	if len(r.Props) == 0 {
		return m, nil
	}
	v, err := DecodeJSON([]byte(r.Props))
	if err != nil {
		return nil, err
	}
	if mm, ok := v.(map[string]any); ok {
		return mm, nil
	}
	return m, nil
}

// JSONSize estimates the length of the twin's JSON, to size buffers.
func (t *Twin) JSONSize() int {
	n := 160 + len(t.ID) + len(t.Model) + t.Section.jsonSize()
	for i := range t.Components {
		n += 80 + len(t.Components[i].Name) + t.Components[i].jsonSize()
	}
	return n
}

func (s *Section) jsonSize() int {
	n := 0
	for i := range s.Props {
		p := &s.Props[i]
		n += 2*len(p.Name) + len(p.Value) + len(p.SourceTime) + 64
	}
	return n
}
