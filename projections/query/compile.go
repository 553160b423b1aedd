package query

import (
	"math"
	"slices"
	"strings"
)

// functions lists the scalar functions with their arity, for messages.
var functions = map[string]string{
	"IS_OF_MODEL":    "IS_OF_MODEL([collection,] 'dtmi' [, exact])",
	"IS_DEFINED":     "IS_DEFINED(property)",
	"IS_NULL":        "IS_NULL(value)",
	"IS_BOOL":        "IS_BOOL(value)",
	"IS_NUMBER":      "IS_NUMBER(value)",
	"IS_STRING":      "IS_STRING(value)",
	"IS_PRIMITIVE":   "IS_PRIMITIVE(value)",
	"IS_OBJECT":      "IS_OBJECT(value)",
	"IS_ARRAY":       "IS_ARRAY(value)",
	"STARTSWITH":     "STARTSWITH(string, prefix)",
	"ENDSWITH":       "ENDSWITH(string, suffix)",
	"CONTAINS":       "CONTAINS(string, substring)",
	"ARRAY_CONTAINS": "ARRAY_CONTAINS(array, value)",
	"COUNT":          "COUNT() or COUNT(value)",
	"SUM":            "SUM(number)",
	"AVG":            "AVG(number)",
	"MIN":            "MIN(value)",
	"MAX":            "MAX(value)",
}

func functionList() string {
	names := make([]string, 0, len(functions))
	for n := range functions {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// aggSpec is one aggregate of a grouped query.
type aggSpec struct {
	fn  string
	arg evalFn // nil for COUNT()
}

// aggRow is one group: its key values and accumulators.
type aggRow struct {
	keys []any
	accs []acc
}

type acc struct {
	n   int     // rows (COUNT) or numbers seen (SUM, AVG)
	sum float64 // SUM, AVG
	v   any     // MIN, MAX
}

func (a *acc) add(fn string, v any) {
	switch fn {
	case "COUNT":
		if !isMissing(v) {
			a.n++
		}
	case "SUM", "AVG":
		if f, ok := v.(float64); ok {
			a.n++
			a.sum += f
		}
	case "MIN", "MAX":
		if isMissing(v) {
			return
		}
		if a.v == nil && a.n == 0 {
			a.v, a.n = v, 1
			return
		}
		c := sortCompare(v, a.v)
		if fn == "MIN" && c < 0 || fn == "MAX" && c > 0 {
			a.v = v
		}
	}
}

func (a *acc) result(fn string) any {
	switch fn {
	case "COUNT":
		return float64(a.n)
	case "SUM":
		return a.sum
	case "AVG":
		if a.n == 0 {
			return missing
		}
		return a.sum / float64(a.n)
	}
	if a.n == 0 {
		return missing
	}
	return a.v
}

// compileIn compiles e for a row, or with agg for the columns of a grouped
// query, where names must be grouped on or aggregated.
func (p *planner) compileIn(e Expr, agg bool) (evalFn, error) {
	prev := p.inAgg
	p.inAgg = agg
	defer func() { p.inAgg = prev }()
	return p.compile(e)
}

func (p *planner) compileBool(e Expr) (evalFn, error) {
	if l, ok := e.(*Literal); ok {
		if _, ok := l.Value.(bool); !ok {
			return nil, invalid("WHERE needs a condition, found %s (line %d, column %d)", l, l.At.Line, l.At.Col)
		}
	}
	return p.compileIn(e, false)
}

func (p *planner) compile(e Expr) (evalFn, error) {
	if p.inAgg {
		s := e.String()
		for j, g := range p.groupStr {
			if g == s {
				return func(r *row) any { return r.agg.keys[j] }, nil
			}
		}
	}
	switch x := e.(type) {
	case *Literal:
		if p.reuse && x.arg > 0 {
			k := x.arg - 1
			return func(r *row) any { return r.args[k] }, nil
		}
		v := x.Value
		return func(*row) any { return v }, nil
	case *Param:
		return nil, invalid("the parameter @%s (line %d, column %d) has no value", x.Name, x.At.Line, x.At.Col)
	case *Array:
		if x.Elided {
			return nil, invalid("the array at line %d, column %d holds '..', a placeholder of the documentation; list every value", x.At.Line, x.At.Col)
		}
		fs := make([]evalFn, len(x.Elems))
		for i, el := range x.Elems {
			f, err := p.compile(el)
			if err != nil {
				return nil, err
			}
			fs[i] = f
		}
		return func(r *row) any {
			out := make([]any, len(fs))
			for i, f := range fs {
				out[i] = f(r)
			}
			return out
		}, nil
	case *Ref:
		if p.inAgg {
			return nil, invalid("%s (line %d, column %d) must be in GROUP BY or inside an aggregate such as COUNT() or MAX()", x, x.At.Line, x.At.Col)
		}
		return p.compileRef(x)
	case *Unary:
		f, err := p.compile(x.X)
		if err != nil {
			return nil, err
		}
		switch x.Op {
		case "NOT":
			return func(r *row) any {
				switch truth(f(r)) {
				case 1:
					return false
				case 0:
					return true
				}
				return missing
			}, nil
		case "-":
			return func(r *row) any {
				if v, ok := f(r).(float64); ok {
					return -v
				}
				return missing
			}, nil
		}
		return f, nil
	case *Binary:
		return p.compileBinary(x)
	case *In:
		if x.Set.Elided {
			return nil, invalid("the array at line %d, column %d holds '..', a placeholder of the documentation; list every value", x.Set.At.Line, x.Set.At.Col)
		}
		if len(x.Set.Elems) > MaxInItems {
			return nil, invalid("IN takes at most %d values, found %d", MaxInItems, len(x.Set.Elems))
		}
		f, err := p.compile(x.X)
		if err != nil {
			return nil, err
		}
		set, err := p.compile(x.Set)
		if err != nil {
			return nil, err
		}
		not := x.Not
		// A set of literal strings is a map lookup.
		if strs, ok := p.stringLits(x.Set.Elems); ok && len(strs) > 4 {
			m := make(map[string]bool, len(strs))
			for _, s := range strs {
				m[s] = true
			}
			return func(r *row) any {
				v := f(r)
				if isMissing(v) {
					return missing
				}
				s, ok := v.(string)
				return (ok && m[s]) != not
			}, nil
		}
		return func(r *row) any {
			v := f(r)
			if isMissing(v) {
				return missing
			}
			for _, el := range set(r).([]any) {
				if equal(v, el) == 1 {
					return !not
				}
			}
			return not
		}, nil
	case *Call:
		return p.compileCall(x)
	}
	return nil, invalid("unsupported expression %s", e)
}

func (p *planner) compileBinary(x *Binary) (evalFn, error) {
	fx, err := p.compile(x.X)
	if err != nil {
		return nil, err
	}
	fy, err := p.compile(x.Y)
	if err != nil {
		return nil, err
	}
	switch x.Op {
	case "AND":
		return func(r *row) any {
			a := truth(fx(r))
			if a == 0 {
				return false
			}
			b := truth(fy(r))
			if b == 0 {
				return false
			}
			if a == 1 && b == 1 {
				return true
			}
			return missing
		}, nil
	case "OR":
		return func(r *row) any {
			a := truth(fx(r))
			if a == 1 {
				return true
			}
			b := truth(fy(r))
			if b == 1 {
				return true
			}
			if a == 0 && b == 0 {
				return false
			}
			return missing
		}, nil
	case "=":
		return func(r *row) any { return boolOrMissing(equal(fx(r), fy(r))) }, nil
	case "!=":
		return func(r *row) any {
			switch equal(fx(r), fy(r)) {
			case 1:
				return false
			case 0:
				return true
			}
			return missing
		}, nil
	case "<", ">", "<=", ">=":
		op := x.Op
		// Comparing with a number constant is the common case.
		if l, ok := x.Y.(*Literal); ok {
			if c, ok := l.Value.(float64); ok {
				if f := p.compareNumberProperty(x.X, op, c); f != nil {
					return f, nil
				}
				return func(r *row) any {
					v, ok := fx(r).(float64)
					if !ok {
						return missing
					}
					switch op {
					case "<":
						return v < c
					case ">":
						return v > c
					case "<=":
						return v <= c
					}
					return v >= c
				}, nil
			}
		}
		return func(r *row) any {
			c, ok := order(fx(r), fy(r))
			if !ok {
				return missing
			}
			switch op {
			case "<":
				return c < 0
			case ">":
				return c > 0
			case "<=":
				return c <= 0
			}
			return c >= 0
		}, nil
	case "+", "-", "*", "/", "%":
		op := x.Op
		return func(r *row) any {
			a, ok1 := fx(r).(float64)
			b, ok2 := fy(r).(float64)
			if !ok1 || !ok2 {
				if op == "+" {
					// + joins strings too.
					if s, ok := fx(r).(string); ok {
						if t, ok := fy(r).(string); ok {
							return s + t
						}
					}
				}
				return missing
			}
			switch op {
			case "+":
				return a + b
			case "-":
				return a - b
			case "*":
				return a * b
			case "/":
				if b == 0 {
					return missing
				}
				return a / b
			}
			if b == 0 {
				return missing
			}
			return math.Mod(a, b)
		}, nil
	}
	return nil, invalid("unsupported operator %s", x.Op)
}

// compileRef resolves a dotted name to a collection and a path within it.
func (p *planner) compileRef(x *Ref) (evalFn, error) {
	var slot int
	var rest []string
	if i, ok := p.lookup(x.Path[0]); ok {
		slot, rest = p.slots[i], x.Path[1:]
	} else if len(p.names) == 1 {
		slot, rest = p.slots[0], x.Path
	} else {
		var known []string
		for _, n := range p.names {
			if n != "" {
				known = append(known, n)
			}
		}
		return nil, invalid("%s (line %d, column %d): %s is not a collection of the query; it names %s", x, x.At.Line, x.At.Col, x.Path[0], strings.Join(known, ", "))
	}
	if slot >= 0 {
		if len(rest) == 0 {
			return func(r *row) any { return r.twins[slot] }, nil
		}
		first, tail := rest[0], slices.Clone(rest[1:])
		if strings.HasPrefix(first, "$") {
			switch strings.ToLower(first) {
			case "$dtid":
				if len(tail) > 0 {
					return func(*row) any { return missing }, nil
				}
				return func(r *row) any { return r.twins[slot].ID() }, nil
			case "$etag":
				if len(tail) > 0 {
					return func(*row) any { return missing }, nil
				}
				return func(r *row) any { return r.twins[slot].ETag() }, nil
			case "$metadata":
				if len(tail) == 1 && tail[0] == "$model" {
					return func(r *row) any { return r.twins[slot].Model() }, nil
				}
				return func(r *row) any { return walk(r.twins[slot].Metadata(), tail) }, nil
			}
			return nil, invalid("%s (line %d, column %d): twins have $dtId, $etag and $metadata, not %s", x, x.At.Line, x.At.Col, first)
		}
		if len(tail) == 0 {
			return func(r *row) any {
				if v, ok := r.twins[slot].Property(first); ok {
					return v
				}
				return missing
			}, nil
		}
		return func(r *row) any {
			v, ok := r.twins[slot].Property(first)
			if !ok {
				return missing
			}
			return walk(v, tail)
		}, nil
	}
	rs := -slot - 1
	if len(rest) == 0 {
		return func(r *row) any { return r.rels[rs] }, nil
	}
	first, tail := rest[0], slices.Clone(rest[1:])
	if strings.HasPrefix(first, "$") {
		var get func(Relationship) string
		switch strings.ToLower(first) {
		case "$relationshipid":
			get = Relationship.ID
		case "$sourceid":
			get = Relationship.Source
		case "$targetid":
			get = Relationship.Target
		case "$relationshipname":
			get = Relationship.Name
		case "$etag":
			get = Relationship.ETag
		default:
			return nil, invalid("%s (line %d, column %d): relationships have $relationshipId, $sourceId, $targetId, $relationshipName and $etag, not %s", x, x.At.Line, x.At.Col, first)
		}
		if len(tail) > 0 {
			return func(*row) any { return missing }, nil
		}
		return func(r *row) any { return get(r.rels[rs]) }, nil
	}
	return func(r *row) any {
		v, ok := r.rels[rs].Property(first)
		if !ok {
			return missing
		}
		return walk(v, tail)
	}, nil
}

// walk follows map keys into nested objects.
func walk(v any, path []string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return missing
		}
		if v, ok = m[k]; !ok {
			return missing
		}
	}
	return v
}

func (p *planner) compileCall(c *Call) (evalFn, error) {
	usage, known := functions[c.Name]
	if !known {
		return nil, invalid("unknown function %s (line %d, column %d); the functions are %s", c.Name, c.At.Line, c.At.Col, functionList())
	}
	if aggregates[c.Name] {
		return p.compileAggregate(c, usage)
	}
	if c.Name == "IS_OF_MODEL" {
		slot, model, exact, err := p.modelArgs(c)
		if err != nil {
			return nil, err
		}
		if p.inAgg {
			return nil, invalid("IS_OF_MODEL (line %d, column %d) must be inside an aggregate in a grouped query", c.At.Line, c.At.Col)
		}
		set := map[string]bool{}
		for _, m := range p.modelSet(model, exact) {
			set[m] = true
		}
		return func(r *row) any { return set[r.twins[slot].Model()] }, nil
	}
	want := 1
	switch c.Name {
	case "STARTSWITH", "ENDSWITH", "CONTAINS", "ARRAY_CONTAINS":
		want = 2
	}
	if len(c.Args) != want {
		return nil, invalid("%s (line %d, column %d) takes %d argument(s), found %d: %s", c.Name, c.At.Line, c.At.Col, want, len(c.Args), usage)
	}
	args := make([]evalFn, len(c.Args))
	for i, a := range c.Args {
		f, err := p.compile(a)
		if err != nil {
			return nil, err
		}
		args[i] = f
	}
	a := args[0]
	switch c.Name {
	case "IS_DEFINED":
		if _, ok := c.Args[0].(*Ref); !ok {
			return nil, invalid("IS_DEFINED (line %d, column %d) takes a property, such as IS_DEFINED(T.name); found %s", c.At.Line, c.At.Col, c.Args[0])
		}
		return func(r *row) any { return !isMissing(a(r)) }, nil
	case "IS_NULL":
		return func(r *row) any { return a(r) == nil }, nil
	case "IS_BOOL":
		return func(r *row) any { _, ok := a(r).(bool); return ok }, nil
	case "IS_NUMBER":
		return func(r *row) any { _, ok := a(r).(float64); return ok }, nil
	case "IS_STRING":
		return func(r *row) any { _, ok := a(r).(string); return ok }, nil
	case "IS_ARRAY":
		return func(r *row) any { _, ok := a(r).([]any); return ok }, nil
	case "IS_OBJECT":
		return func(r *row) any {
			switch a(r).(type) {
			case map[string]any, Twin, Relationship:
				return true
			}
			return false
		}, nil
	case "IS_PRIMITIVE":
		return func(r *row) any {
			switch a(r).(type) {
			case nil, bool, float64, string:
				return true
			}
			return false
		}, nil
	case "STARTSWITH", "ENDSWITH", "CONTAINS":
		for i, arg := range c.Args {
			if l, ok := arg.(*Literal); ok {
				if _, ok := l.Value.(string); !ok {
					return nil, invalid("%s (line %d, column %d) takes strings; argument %d is %s: %s", c.Name, c.At.Line, c.At.Col, i+1, l, usage)
				}
			}
			if _, ok := arg.(*Array); ok {
				return nil, invalid("%s (line %d, column %d) takes strings; argument %d is an array: %s", c.Name, c.At.Line, c.At.Col, i+1, usage)
			}
		}
		b := args[1]
		test := strings.HasPrefix
		switch c.Name {
		case "ENDSWITH":
			test = strings.HasSuffix
		case "CONTAINS":
			test = strings.Contains
		}
		return func(r *row) any {
			s, ok1 := a(r).(string)
			t, ok2 := b(r).(string)
			if !ok1 || !ok2 {
				return missing
			}
			return test(s, t)
		}, nil
	case "ARRAY_CONTAINS":
		if l, ok := c.Args[0].(*Literal); ok {
			return nil, invalid("ARRAY_CONTAINS (line %d, column %d) takes an array first; found %s: %s", c.At.Line, c.At.Col, l, usage)
		}
		b := args[1]
		return func(r *row) any {
			arr, ok := a(r).([]any)
			if !ok {
				return missing
			}
			v := b(r)
			for _, el := range arr {
				if equal(el, v) == 1 {
					return true
				}
			}
			return false
		}, nil
	}
	return nil, invalid("unknown function %s", c.Name)
}

func (p *planner) compileAggregate(c *Call, usage string) (evalFn, error) {
	if !p.inAgg {
		return nil, invalid("the aggregate %s (line %d, column %d) may only appear in SELECT or ORDER BY", c.Name, c.At.Line, c.At.Col)
	}
	spec := aggSpec{fn: c.Name}
	switch {
	case c.Name == "COUNT" && len(c.Args) == 0:
	case len(c.Args) == 1:
		if containsAgg(c.Args[0]) {
			return nil, invalid("aggregates cannot nest: %s (line %d, column %d)", c, c.At.Line, c.At.Col)
		}
		f, err := p.compileIn(c.Args[0], false)
		if err != nil {
			return nil, err
		}
		spec.arg = f
	default:
		return nil, invalid("%s (line %d, column %d) takes one argument: %s", c.Name, c.At.Line, c.At.Col, usage)
	}
	k := len(p.pl.aggs)
	p.pl.aggs = append(p.pl.aggs, spec)
	fn := c.Name
	return func(r *row) any { return r.agg.accs[k].result(fn) }, nil
}

// compareNumberProperty compiles <twin>.<property> op c for twins that
// read numbers without boxing them (NumberReader), falling back to
// Property for those that do not. It returns nil when e is not a plain
// twin property.
func (p *planner) compareNumberProperty(e Expr, op string, c float64) evalFn {
	slot, name, test, ok := p.numberTest(e, op, c)
	if !ok {
		return nil
	}
	keep := test.keep()
	return func(r *row) any {
		t := r.twins[slot]
		var v float64
		if nr, ok := t.(NumberReader); ok {
			if v, ok = nr.Number(name); !ok {
				return missing
			}
		} else {
			pv, _ := t.Property(name)
			if v, ok = pv.(float64); !ok {
				return missing
			}
		}
		return keep(v)
	}
}

// numberTest recognizes e op c where e is a root property of a twin
// collection: it returns the collection's slot, the property and the test
// of its number.
func (p *planner) numberTest(e Expr, op string, c float64) (slot int, name string, test NumberTest, ok bool) {
	ref, isRef := e.(*Ref)
	if !isRef || p.inAgg {
		return 0, "", NumberTest{}, false
	}
	var rest []string
	if i, found := p.lookup(ref.Path[0]); found {
		slot, rest = p.slots[i], ref.Path[1:]
	} else if len(p.names) == 1 {
		slot, rest = p.slots[0], ref.Path
	} else {
		return 0, "", NumberTest{}, false
	}
	if slot < 0 || len(rest) != 1 || strings.HasPrefix(rest[0], "$") {
		return 0, "", NumberTest{}, false
	}
	test = NumberTest{Op: op, C: c}
	if test.keep() == nil {
		return 0, "", NumberTest{}, false
	}
	return slot, rest[0], test, true
}

// numberCondition recognizes a conjunct <twin>.<property> op <number>.
func (p *planner) numberCondition(e Expr) (slot int, name string, test NumberTest, ok bool) {
	b, isBin := e.(*Binary)
	if !isBin {
		return 0, "", NumberTest{}, false
	}
	l, isLit := b.Y.(*Literal)
	if !isLit {
		return 0, "", NumberTest{}, false
	}
	c, isNum := l.Value.(float64)
	if !isNum {
		return 0, "", NumberTest{}, false
	}
	return p.numberTest(b.X, b.Op, c)
}
