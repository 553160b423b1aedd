package query

import "iter"

// Graph is the read-only view of the twin graph the executor reads: one
// consistent snapshot. Implementations must return the same results, in the
// same order, every time they are asked the same question, so that paging
// over one Graph neither skips nor repeats rows. A Graph is used by one
// goroutine at a time.
type Graph interface {
	// Position is the log position the graph reflects.
	Position() uint64
	// Twin returns the twin with the given id; ok is false when there is none.
	Twin(id string) (t Twin, ok bool)
	// Twins iterates over every twin in a stable order (id order for the
	// twin graph).
	Twins() iter.Seq[Twin]
	// TwinsOfModel iterates over the twins whose model is exactly model, in a
	// stable order.
	TwinsOfModel(model string) iter.Seq[Twin]
	// Outgoing iterates over the relationships whose source is src, only
	// those named name unless name is "", in a stable order.
	Outgoing(src, name string) iter.Seq[Relationship]
	// Incoming iterates over the relationships whose target is target, in a
	// stable order.
	Incoming(target string) iter.Seq[Relationship]
	// Models returns the ids of every known model. The slice must not be
	// modified.
	Models() []string
	// Descendants returns the ids of the models that extend model
	// transitively, not including model. The slice must not be modified.
	Descendants(model string) []string
}

// RelationshipScanner is an optional capability of a Graph: iterating over
// every relationship directly. Without it the executor visits every twin's
// outgoing relationships.
type RelationshipScanner interface {
	Relationships() iter.Seq[Relationship]
}

// Twin is one twin as the executor reads it. Values are JSON values as
// decoded by encoding/json: nil, bool, float64, string, []any and
// map[string]any; they must not be modified.
type Twin interface {
	ID() string
	Model() string
	ETag() string
	// Property returns a root property or a component (as an object); ok is
	// false when it is not set.
	Property(name string) (v any, ok bool)
	// Metadata returns the twin's $metadata object ($model,
	// $lastUpdateTime, and per property lastUpdateTime and sourceTime).
	Metadata() map[string]any
	// AppendJSON appends the twin's ADT JSON representation.
	AppendJSON(dst []byte) []byte
}

// Relationship is one relationship as the executor reads it.
type Relationship interface {
	ID() string
	Source() string
	Target() string
	Name() string
	ETag() string
	// Property returns a relationship property; ok is false when unset.
	Property(name string) (v any, ok bool)
	// AppendJSON appends the relationship's ADT JSON representation.
	AppendJSON(dst []byte) []byte
}

// NumberReader is an optional capability of a Twin: reading a root
// property as a number without boxing it, for comparisons with a number.
// ok is false when the property is not set or is not a number.
type NumberReader interface {
	Number(name string) (v float64, ok bool)
}

// Adjacency is an optional capability of a Twin: its own relationships,
// so that expanding from a bound twin needs no second lookup by id. The
// iterators must yield what Graph.Outgoing(t.ID(), name) and
// Graph.Incoming(t.ID()) yield, in the same order.
type Adjacency interface {
	Outgoing(name string) iter.Seq[Relationship]
	Incoming() iter.Seq[Relationship]
}

// Prefetcher is an optional capability of a Twin: Prefetch reads the
// memory the twin's properties and JSON are held in, and returns any value
// computed from what it read. The executor prefetches the twins one hop
// reaches together, in a tight loop, before reading each in turn.
type Prefetcher interface {
	Prefetch() uint
}

// Seeker looks twins up by id during one run; see SeekingGraph. A Seeker
// that also has a Release() method is handed back with it once the run is
// over, and not used after. One that has a Follow(r Relationship, id
// string) (Twin, bool) method is asked for the twin id at one end of r
// that way, which answers as Twin(id) does, and may not need a lookup.
type Seeker interface {
	Twin(id string) (t Twin, ok bool)
}

// SeekingGraph is an optional capability of a Graph: a Seeker answers Twin
// as the Graph does, cheaply when the ids come in ascending order, as the
// twins at the other end of one twin's relationships mostly do. The
// executor takes one Seeker per expansion step and uses it from one
// goroutine.
type SeekingGraph interface {
	Seeker() Seeker
}

// NumberScanner is an optional capability of a Graph: the twins that
// TwinsOfModel(model) yields, in the same order, restricted to those whose
// root property prop holds a number v (as NumberReader reads it) that test
// keeps. ok is false when the graph would not do better than TwinsOfModel
// and a filter; the executor then filters itself.
type NumberScanner interface {
	TwinsOfModelWhere(model, prop string, test NumberTest) (twins iter.Seq[Twin], ok bool)
}

// NumberTest compares a number with a constant: v Op C, Op one of "<",
// "<=", ">" and ">=".
type NumberTest struct {
	Op string
	C  float64
}

// keep returns the test as a function, chosen once rather than per number
// (NaN never passes); nil for an operator it does not know.
func (t NumberTest) keep() func(float64) bool {
	c := t.C
	switch t.Op {
	case "<":
		return func(v float64) bool { return v < c }
	case "<=":
		return func(v float64) bool { return v <= c }
	case ">":
		return func(v float64) bool { return v > c }
	case ">=":
		return func(v float64) bool { return v >= c }
	}
	return nil
}
