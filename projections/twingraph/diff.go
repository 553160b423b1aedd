package twingraph

import (
	"bytes"
	"fmt"
	"iter"
	"strconv"
	"strings"
)

// DiffOptions selects what Diff compares. The zero value compares the
// graph's content as a reader sees it.
type DiffOptions struct {
	// Exact also compares what only the graph's bookkeeping holds: the
	// positions, stream versions and ETags, update and source times, the
	// models, deleted twins' stream versions and the telemetry state (last
	// values and recent message ids). Two graphs built from the same log
	// are equal under Exact. Default false: twins' models, properties and
	// components (by value) and relationships only.
	Exact bool
	// Twin, when not nil, limits the twins compared (and the relationships
	// reported) to those it accepts, by id and model; a twin is compared
	// when it accepts the twin in either graph.
	Twin func(id, model string) bool
}

// Kinds of Difference.
const (
	Added   = "added"   // in b only
	Removed = "removed" // in a only
	Changed = "changed" // in both, with other values
)

// Difference is one way graph b differs from graph a.
type Difference struct {
	// Kind is Added, Removed or Changed.
	Kind string `json:"kind"`
	// What names the kind of thing: "twin", "model" (of a twin),
	// "property", "component", "relationship", and under Exact also
	// "position", "modelsVersion", "modelDefinition", "version", "etag",
	// "updated", "tomb" and "telemetry".
	What string `json:"what"`
	// Twin is the twin's id ("" for the graph as a whole and for models).
	Twin string `json:"twinId,omitempty"`
	// Component is the component of a component's property.
	Component string `json:"component,omitempty"`
	// Name is the property's name, the relationship's or component's id,
	// or the model's id.
	Name string `json:"name,omitempty"`
	// A and B are the values in a and in b: JSON for properties and
	// relationships, a short text otherwise; "" where absent.
	A string `json:"a,omitempty"`
	B string `json:"b,omitempty"`
}

// String describes the difference on one line.
func (d Difference) String() string {
	var sb strings.Builder
	sb.WriteString(d.What)
	if d.Twin != "" {
		sb.WriteString(" of twin ")
		sb.WriteString(strconv.Quote(d.Twin))
	}
	if d.Component != "" {
		sb.WriteString(" component ")
		sb.WriteString(strconv.Quote(d.Component))
	}
	if d.Name != "" {
		sb.WriteString(" ")
		sb.WriteString(strconv.Quote(d.Name))
	}
	sb.WriteString(" ")
	sb.WriteString(d.Kind)
	switch d.Kind {
	case Added:
		fmt.Fprintf(&sb, ": %s", shorten(d.B))
	case Removed:
		fmt.Fprintf(&sb, ": was %s", shorten(d.A))
	default:
		fmt.Fprintf(&sb, ": %s, then %s", shorten(d.A), shorten(d.B))
	}
	return sb.String()
}

func shorten(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// Diff calls fn with each difference of b from a, twins in id order, until
// fn returns false. Equal graphs produce no call. It reads only the two
// snapshots, which are immutable, so it may run while the graphs apply.
func Diff(a, b *Snapshot, opts DiffOptions, fn func(Difference) bool) {
	d := differ{a: a, b: b, opts: opts, fn: fn}
	if opts.Exact {
		if a.pos != b.pos {
			d.emit(Difference{Kind: Changed, What: "position", A: u(a.pos), B: u(b.pos)})
		}
		if a.modelsVersion != b.modelsVersion {
			d.emit(Difference{Kind: Changed, What: "modelsVersion", A: u(a.modelsVersion), B: u(b.modelsVersion)})
		}
		mergeJoin(d.alive, a.ModelRecords(), b.ModelRecords(), func(m *ModelRecord) string { return m.ID }, d.model)
	}
	mergeJoin(d.alive, a.Twins(), b.Twins(), func(t *Twin) string { return t.ID }, d.twin)
	if opts.Exact {
		mergeJoin(d.alive, rows[tomb](a, tableTombs), rows[tomb](b, tableTombs), func(t *tomb) string { return t.ID }, d.tomb)
		mergeJoin(d.alive, a.telemetryRecords(), b.telemetryRecords(), func(r *TelemetryRecord) string { return r.Twin }, d.telem)
	}
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }

type differ struct {
	a, b    *Snapshot
	opts    DiffOptions
	fn      func(Difference) bool
	stopped bool
}

func (d *differ) alive() bool { return !d.stopped }

func (d *differ) emit(x Difference) {
	if !d.stopped && !d.fn(x) {
		d.stopped = true
	}
}

// mergeJoin walks two sequences ordered by key, calling fn with the pair
// of equal keys (nil on the side that lacks it), while alive.
func mergeJoin[T any](alive func() bool, a, b iter.Seq[*T], key func(*T) string, fn func(x, y *T)) {
	na, stopA := iter.Pull(a)
	defer stopA()
	nb, stopB := iter.Pull(b)
	defer stopB()
	x, okx := na()
	y, oky := nb()
	for (okx || oky) && alive() {
		switch {
		case !oky || (okx && key(x) < key(y)):
			fn(x, nil)
			x, okx = na()
		case !okx || key(y) < key(x):
			fn(nil, y)
			y, oky = nb()
		default:
			fn(x, y)
			x, okx = na()
			y, oky = nb()
		}
	}
}

func (d *differ) model(x, y *ModelRecord) {
	switch {
	case y == nil:
		d.emit(Difference{Kind: Removed, What: "model", Name: x.ID, A: u(x.Position)})
	case x == nil:
		d.emit(Difference{Kind: Added, What: "model", Name: y.ID, B: u(y.Position)})
	case x.Position != y.Position || x.Uploaded != y.Uploaded || x.Decommissioned != y.Decommissioned:
		d.emit(Difference{Kind: Changed, What: "model", Name: x.ID,
			A: fmt.Sprintf("uploaded at %d (%d), decommissioned %t", x.Position, x.Uploaded, x.Decommissioned),
			B: fmt.Sprintf("uploaded at %d (%d), decommissioned %t", y.Position, y.Uploaded, y.Decommissioned)})
	case !bytes.Equal(x.Definition, y.Definition):
		d.emit(Difference{Kind: Changed, What: "modelDefinition", Name: x.ID, A: string(x.Definition), B: string(y.Definition)})
	}
}

func (d *differ) twin(x, y *Twin) {
	if f := d.opts.Twin; f != nil {
		if (x == nil || !f(x.ID, x.Model)) && (y == nil || !f(y.ID, y.Model)) {
			return
		}
	}
	switch {
	case y == nil:
		d.emit(Difference{Kind: Removed, What: "twin", Twin: x.ID, A: x.Model})
		return
	case x == nil:
		d.emit(Difference{Kind: Added, What: "twin", Twin: y.ID, B: y.Model})
		return
	}
	id := x.ID
	if x.Model != y.Model {
		d.emit(Difference{Kind: Changed, What: "model", Twin: id, A: x.Model, B: y.Model})
	}
	if d.opts.Exact {
		if x.Version != y.Version {
			d.emit(Difference{Kind: Changed, What: "version", Twin: id, A: u(x.Version), B: u(y.Version)})
		}
		if x.ETagPos != y.ETagPos {
			d.emit(Difference{Kind: Changed, What: "etag", Twin: id, A: x.ETag(), B: y.ETag()})
		}
	}
	d.section(id, "", &x.Section, &y.Section)
	i, j := 0, 0
	for (i < len(x.Components) || j < len(y.Components)) && d.alive() {
		switch {
		case j == len(y.Components) || (i < len(x.Components) && x.Components[i].Name < y.Components[j].Name):
			d.emit(Difference{Kind: Removed, What: "component", Twin: id, Name: x.Components[i].Name})
			i++
		case i == len(x.Components) || y.Components[j].Name < x.Components[i].Name:
			d.emit(Difference{Kind: Added, What: "component", Twin: id, Name: y.Components[j].Name})
			j++
		default:
			d.section(id, x.Components[i].Name, &x.Components[i].Section, &y.Components[j].Section)
			i, j = i+1, j+1
		}
	}
	i, j = 0, 0
	for (i < len(x.Out) || j < len(y.Out)) && d.alive() {
		switch {
		case j == len(y.Out) || (i < len(x.Out) && x.Out[i].ID < y.Out[j].ID):
			d.relationship(id, x.Out[i], nil)
			i++
		case i == len(x.Out) || y.Out[j].ID < x.Out[i].ID:
			d.relationship(id, nil, y.Out[j])
			j++
		default:
			d.relationship(id, x.Out[i], y.Out[j])
			i, j = i+1, j+1
		}
	}
}

func (d *differ) section(id, comp string, x, y *Section) {
	if d.opts.Exact && x.Updated != y.Updated {
		d.emit(Difference{Kind: Changed, What: "updated", Twin: id, Component: comp, A: strconv.FormatInt(x.Updated, 10), B: strconv.FormatInt(y.Updated, 10)})
	}
	i, j := 0, 0
	for (i < len(x.Props) || j < len(y.Props)) && d.alive() {
		switch {
		case j == len(y.Props) || (i < len(x.Props) && x.Props[i].Name < y.Props[j].Name):
			d.emit(Difference{Kind: Removed, What: "property", Twin: id, Component: comp, Name: x.Props[i].Name, A: x.Props[i].Value})
			i++
		case i == len(x.Props) || y.Props[j].Name < x.Props[i].Name:
			d.emit(Difference{Kind: Added, What: "property", Twin: id, Component: comp, Name: y.Props[j].Name, B: y.Props[j].Value})
			j++
		default:
			p, q := &x.Props[i], &y.Props[j]
			if p.Value != q.Value {
				d.emit(Difference{Kind: Changed, What: "property", Twin: id, Component: comp, Name: p.Name, A: p.Value, B: q.Value})
			} else if d.opts.Exact && (p.Updated != q.Updated || p.SourceTime != q.SourceTime) {
				d.emit(Difference{Kind: Changed, What: "updated", Twin: id, Component: comp, Name: p.Name,
					A: strconv.FormatInt(p.Updated, 10) + " " + p.SourceTime, B: strconv.FormatInt(q.Updated, 10) + " " + q.SourceTime})
			}
			i, j = i+1, j+1
		}
	}
}

func (d *differ) relationship(id string, x, y *Relationship) {
	if f := d.opts.Twin; f != nil && !d.opts.Exact {
		// A relationship to a twin the caller may not read is not shown,
		// as relationship reads hide it.
		if x != nil && !visibleIn(d.a, f, x.Target) {
			x = nil
		}
		if y != nil && !visibleIn(d.b, f, y.Target) {
			y = nil
		}
	}
	rel := func(r *Relationship) string {
		if r == nil {
			return ""
		}
		return string(r.AppendJSON(nil))
	}
	switch {
	case x == nil && y == nil:
	case y == nil:
		d.emit(Difference{Kind: Removed, What: "relationship", Twin: id, Name: x.ID, A: rel(x)})
	case x == nil:
		d.emit(Difference{Kind: Added, What: "relationship", Twin: id, Name: y.ID, B: rel(y)})
	case x.Name != y.Name || x.Target != y.Target || x.Props != y.Props || (d.opts.Exact && x.ETagPos != y.ETagPos):
		d.emit(Difference{Kind: Changed, What: "relationship", Twin: id, Name: x.ID, A: rel(x), B: rel(y)})
	}
}

func visibleIn(s *Snapshot, f func(id, model string) bool, id string) bool {
	t, ok := s.Twin(id)
	return ok && f(id, t.Model)
}

func (d *differ) tomb(x, y *tomb) {
	switch {
	case y == nil:
		d.emit(Difference{Kind: Removed, What: "tomb", Twin: x.ID, A: u(x.Version)})
	case x == nil:
		d.emit(Difference{Kind: Added, What: "tomb", Twin: y.ID, B: u(y.Version)})
	case x.Version != y.Version:
		d.emit(Difference{Kind: Changed, What: "tomb", Twin: x.ID, A: u(x.Version), B: u(y.Version)})
	}
}

func (d *differ) telem(x, y *TelemetryRecord) {
	show := func(r *TelemetryRecord) string {
		var sb strings.Builder
		fmt.Fprintf(&sb, "version %d, recent %v", r.Version, r.Recent)
		for _, v := range r.Last {
			fmt.Fprintf(&sb, ", last[%q] %s %d %q %s", v.Component, v.MessageID, v.Time, v.SourceTime, v.Body)
		}
		return sb.String()
	}
	switch {
	case y == nil:
		d.emit(Difference{Kind: Removed, What: "telemetry", Twin: x.Twin, A: show(x)})
	case x == nil:
		d.emit(Difference{Kind: Added, What: "telemetry", Twin: y.Twin, B: show(y)})
	default:
		if sx, sy := show(x), show(y); sx != sy {
			d.emit(Difference{Kind: Changed, What: "telemetry", Twin: x.Twin, A: sx, B: sy})
		}
	}
}

// rows iterates over the objects of a table of s in id order.
func rows[T any](s *Snapshot, table string) iter.Seq[*T] {
	return func(yield func(*T) bool) {
		it, err := s.txn.Get(table, "id")
		if err != nil {
			return
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			if !yield(raw.(*T)) {
				return
			}
		}
	}
}
