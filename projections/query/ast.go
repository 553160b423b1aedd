package query

import (
	"strconv"
	"strings"
	"time"
)

// Statement is a parsed query.
type Statement struct {
	Explain  bool
	Distinct bool
	// Top is the TOP(n) limit, -1 when absent.
	Top int
	// Star is SELECT * (or SELECT TOP(n) with no projection).
	Star  bool
	Items []SelectItem
	// From is the collection: DIGITALTWINS or RELATIONSHIPS.
	From      Collection
	FromAlias string
	Joins     []Join
	Match     *Pattern
	Where     Expr
	GroupBy   []Expr
	OrderBy   []OrderItem
	// AsOf is the AS OF clause, nil when absent. The executor does not
	// read it: whoever runs the statement picks the graph it reads
	// (projections/timetravel builds the graph as of that point).
	AsOf *AsOf
}

// AsOf is AS OF '<RFC 3339 time>' or AS OF <log position>: the query reads
// the graph as it was at that time (every event at or before it applied)
// or right after that position. Exactly one of Time and Position is set.
type AsOf struct {
	Time     time.Time
	Position uint64
	At       Pos
}

// Collection names what FROM reads.
type Collection uint8

// Collections.
const (
	DigitalTwins Collection = iota
	Relationships
)

// SelectItem is one projection with its optional AS alias.
type SelectItem struct {
	Expr  Expr
	Alias string
	Pos   Pos
}

// Join is JOIN Alias RELATED Source.Name [RelAlias].
type Join struct {
	Alias, Source, Name, RelAlias string
	Pos                           Pos
}

// Pattern is a MATCH chain: Nodes[i] and Nodes[i+1] are linked by Edges[i].
type Pattern struct {
	Nodes []PatternNode
	Edges []PatternEdge
}

// PatternNode is one (twin) of a MATCH.
type PatternNode struct {
	Name string
	Pos  Pos
}

// Direction of a MATCH edge, read from left to right.
type Direction uint8

// Directions.
const (
	Right Direction = iota // -[]->
	Left                   // <-[]-
	Both                   // -[]-
)

// PatternEdge is one -[var:names*hops]- of a MATCH.
type PatternEdge struct {
	Var   string
	Names []string
	Dir   Direction
	// MinHops and MaxHops bound the path length, inclusive; both 1 by
	// default. [*n] is n..n; [*a..b] is a+1..b (ADT: the start of a range
	// is exclusive); [*..b] is 1..b.
	MinHops, MaxHops int
	Pos              Pos
}

// OrderItem is one ORDER BY key.
type OrderItem struct {
	Expr Expr
	Desc bool
}

// Expr is an expression node.
type Expr interface {
	Pos() Pos
	String() string
}

// Literal is a constant: nil (null), bool, float64 or string.
type Literal struct {
	Value any
	At    Pos
	// arg is the string literal's number in the query text, from 1; 0
	// for every other literal. A plan made for reuse (Cache) reads the
	// value of such a literal from the run's arguments rather than
	// holding it.
	arg int
}

// Array is an array literal, the right side of IN and NIN.
type Array struct {
	Elems []Expr
	// Elided is set when the array contains a ".." placeholder, as in the
	// ADT docs' ['floor1', ..'floorn']; the planner rejects it.
	Elided bool
	At     Pos
}

// Ref is a dotted reference: a collection alias or property, then property
// names, map keys and $-prefixed system names.
type Ref struct {
	Path []string
	At   Pos
}

// Param is a @name placeholder bound from Options.Params.
type Param struct {
	Name string
	At   Pos
}

// Unary is NOT x or -x.
type Unary struct {
	Op string
	X  Expr
	At Pos
}

// Binary is x op y for comparison, logic and arithmetic operators.
type Binary struct {
	Op   string // = != < > <= >= AND OR + - * / %
	X, Y Expr
	At   Pos
}

// In is x IN [...] or x NIN [...] (also NOT IN).
type In struct {
	X   Expr
	Set *Array
	Not bool
	At  Pos
}

// Call is a function call; Name is upper case.
type Call struct {
	Name string
	Args []Expr
	At   Pos
}

func (e *Literal) Pos() Pos { return e.At }
func (e *Array) Pos() Pos   { return e.At }
func (e *Ref) Pos() Pos     { return e.At }
func (e *Param) Pos() Pos   { return e.At }
func (e *Unary) Pos() Pos   { return e.At }
func (e *Binary) Pos() Pos  { return e.At }
func (e *In) Pos() Pos      { return e.At }
func (e *Call) Pos() Pos    { return e.At }

func (e *Literal) String() string {
	switch v := e.Value.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", `\'`) + "'"
	}
	return "?"
}

func (e *Array) String() string {
	s := make([]string, len(e.Elems))
	for i, x := range e.Elems {
		s[i] = x.String()
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func (e *Ref) String() string {
	s := make([]string, len(e.Path))
	for i, p := range e.Path {
		if isPlainName(p) {
			s[i] = p
		} else {
			s[i] = "[[" + p + "]]"
		}
	}
	return strings.Join(s, ".")
}

func isPlainName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if i == 0 && r == '$' {
			continue
		}
		if !isIdentPart(r) || i == 0 && !isIdentStart(r) {
			return false
		}
	}
	return !isReserved(s)
}

func (e *Param) String() string { return "@" + e.Name }
func (e *Unary) String() string {
	if e.Op == "NOT" {
		return "NOT " + e.X.String()
	}
	return e.Op + e.X.String()
}
func (e *Binary) String() string { return "(" + e.X.String() + " " + e.Op + " " + e.Y.String() + ")" }
func (e *In) String() string {
	op := " IN "
	if e.Not {
		op = " NIN "
	}
	return e.X.String() + op + e.Set.String()
}
func (e *Call) String() string {
	s := make([]string, len(e.Args))
	for i, x := range e.Args {
		s[i] = x.String()
	}
	return e.Name + "(" + strings.Join(s, ", ") + ")"
}

// reserved are ADT's reserved keywords plus twinlog's own; they must be
// escaped as [[name]] to be used as names.
var reserved = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`ALL AND AS ASC AVG BY COUNT DESC DEVICES_JOBS DEVICES_MODULES DEVICES
		ENDS_WITH FALSE FROM GROUP IN IS_BOOL IS_DEFINED IS_NULL IS_NUMBER IS_OBJECT IS_PRIMITIVE IS_STRING
		MAX MIN NOT NOT_IN NULL OR ORDER SELECT STARTS_WITH SUM TOP TRUE WHERE IS_OF_MODEL
		NIN JOIN RELATED MATCH DIGITALTWINS RELATIONSHIPS DISTINCT EXPLAIN`) {
		reserved[k] = true
	}
}

func isReserved(s string) bool { return reserved[strings.ToUpper(s)] }
