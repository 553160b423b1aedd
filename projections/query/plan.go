package query

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Planner limits.
const (
	// MaxHops bounds the length of one MATCH relationship (ADT: 10).
	MaxHops = 10
	// MaxInItems bounds the array of IN and NIN.
	MaxInItems = 1000
)

// row is one binding of the query's collections.
type row struct {
	twins []Twin
	rels  []Relationship
	agg   *aggRow // set when evaluating the columns of a grouped query
	args  []any   // the string literals' values of a reused plan
}

type evalFn func(*row) any

type accessKind uint8

const (
	scanAll accessKind = iota
	scanModels
	lookupIDs
	relsBySource
	relsByTarget
)

// access is how the anchor collection is read.
type access struct {
	kind accessKind
	ids  []string // lookupIDs, relsBySource, relsByTarget
	// idArg, when not 0, is the string literal (Literal.arg) the only id
	// comes from in a plan made for reuse: each run reads the id from
	// its arguments; ids holds the value it was planned with.
	idArg  int
	models []string // scanModels
	// A condition on a root property's number, for scanModels: the graph
	// applies prop and test when it is a NumberScanner, the executor
	// filt otherwise.
	prop string
	test NumberTest
	filt evalFn
}

// step expands a bound twin slot to an unbound one through relationships.
type step struct {
	from, to int
	rel      int // relationship slot or -1
	dir      Direction
	names    []string
	min, max int
	filters  []evalFn
	desc     string
}

type outMode uint8

const (
	outStar      outMode = iota // the single collection's JSON
	outStarMulti                // {alias: JSON, ...}
	outItems                    // {name: value, ...}
	outCount                    // {"COUNT": n}, counted while scanning
	outAggregate                // GROUP BY and aggregates
)

type column struct {
	name string
	eval evalFn // over a row, or for outAggregate over row.agg
	// str, when set, reads a string that is always defined ($dtId)
	// without boxing it; encode prefers it to eval.
	str func(*row) string
}

// Plan is a checked query with its access path, ready to run over the
// Graph it was planned for.
type Plan struct {
	stmt       *Statement
	rels       bool // FROM RELATIONSHIPS
	twinNames  []string
	relNames   []string
	anchor     int
	access     access
	anchorFilt []evalFn
	constFilt  []evalFn
	steps      []step
	mode       outMode
	cols       []column
	// Aggregation.
	groupBy []evalFn
	aggs    []aggSpec
	// ORDER BY keys, evaluated like the columns.
	order   []evalFn
	desc    []bool
	explain []string
}

// planner resolves names against the query's collections.
type planner struct {
	g      Graph
	params map[string]any
	stmt   *Statement
	pl     *Plan
	// collections by name: twin slot >= 0, or relationship slot encoded as
	// -(slot+1).
	names []string
	slots []int
	// aggregation context, set while compiling SELECT items of a grouped
	// query.
	inAgg    bool
	groupStr []string
	// reuse is set when the plan is made for reuse with other values of
	// its string literals (Cache): compiled expressions read them from
	// the run's arguments, and pinned lists the literals whose values the
	// plan depends on, which a reuse must bind to the same values.
	reuse  bool
	pinned []int
}

// pin records that the plan depends on the value of literal l.
func (p *planner) pin(l *Literal) {
	if p.reuse && l.arg > 0 && !slices.Contains(p.pinned, l.arg) {
		p.pinned = append(p.pinned, l.arg)
	}
}

// plan checks stmt against g's models and builds its plan, with its
// EXPLAIN text when explain is set.
func plan(g Graph, stmt *Statement, params map[string]any, explain bool) (*Plan, error) {
	p := &planner{g: g, params: params, stmt: stmt, pl: &Plan{stmt: stmt}}
	return p.plan(explain)
}

func (p *planner) plan(explain bool) (*Plan, error) {
	stmt, pl := p.stmt, p.pl
	if err := p.collections(); err != nil {
		return nil, err
	}
	where := stmt.Where
	if where != nil {
		if err := p.substitute(&where); err != nil {
			return nil, err
		}
	}
	for i := range stmt.Items {
		if err := p.substitute(&stmt.Items[i].Expr); err != nil {
			return nil, err
		}
	}
	var conj []Expr
	splitAnd(where, &conj)
	if err := p.access(conj); err != nil {
		return nil, err
	}
	if err := p.output(); err != nil {
		return nil, err
	}
	if explain {
		p.describe()
	}
	return pl, nil
}

func (p *planner) collections() error {
	st, pl := p.stmt, p.pl
	add := func(name string, slot int, at Pos) error {
		if name != "" && slices.Contains(p.names, name) {
			return invalid("the name %s is used twice (line %d, column %d); give each collection its own name", name, at.Line, at.Col)
		}
		p.names = append(p.names, name)
		p.slots = append(p.slots, slot)
		return nil
	}
	if st.From == Relationships {
		pl.rels = true
		pl.relNames = []string{st.FromAlias}
		return add(st.FromAlias, -1, Pos{1, 1})
	}
	if st.Match != nil {
		for _, n := range st.Match.Nodes {
			if err := add(n.Name, len(pl.twinNames), n.Pos); err != nil {
				return invalid("the twin %s appears twice in MATCH (line %d, column %d); patterns must not loop back", n.Name, n.Pos.Line, n.Pos.Col)
			}
			pl.twinNames = append(pl.twinNames, n.Name)
		}
		for _, e := range st.Match.Edges {
			if e.MaxHops > MaxHops {
				return invalid("a MATCH relationship spans at most %d hops, this one (line %d, column %d) up to %d", MaxHops, e.Pos.Line, e.Pos.Col, e.MaxHops)
			}
			if e.Var != "" {
				if e.MaxHops != 1 || e.MinHops != 1 {
					return invalid("the relationship variable %s (line %d, column %d) names one relationship, so it needs a single hop; drop the variable or the hop count", e.Var, e.Pos.Line, e.Pos.Col)
				}
				if err := add(e.Var, -(len(pl.relNames) + 1), e.Pos); err != nil {
					return err
				}
				pl.relNames = append(pl.relNames, e.Var)
			}
		}
		return nil
	}
	if err := add(st.FromAlias, 0, Pos{1, 1}); err != nil {
		return err
	}
	pl.twinNames = append(pl.twinNames, st.FromAlias)
	for _, j := range st.Joins {
		if _, ok := p.lookup(j.Source); !ok || p.slotOf(j.Source) < 0 {
			return invalid("JOIN %s RELATED %s.%s (line %d, column %d): %s is not a twin collection named before it", j.Alias, j.Source, j.Name, j.Pos.Line, j.Pos.Col, j.Source)
		}
		if err := add(j.Alias, len(pl.twinNames), j.Pos); err != nil {
			return err
		}
		pl.twinNames = append(pl.twinNames, j.Alias)
		if j.RelAlias != "" {
			if err := add(j.RelAlias, -(len(pl.relNames) + 1), j.Pos); err != nil {
				return err
			}
			pl.relNames = append(pl.relNames, j.RelAlias)
		}
	}
	return nil
}

// lookup finds a collection by name: exactly, or else ignoring case when
// that is unambiguous.
func (p *planner) lookup(name string) (int, bool) {
	if name == "" {
		return 0, false
	}
	for i, n := range p.names {
		if n == name {
			return i, true
		}
	}
	found := -1
	for i, n := range p.names {
		if strings.EqualFold(n, name) {
			if found >= 0 {
				return 0, false
			}
			found = i
		}
	}
	return found, found >= 0
}

func (p *planner) slotOf(name string) int {
	i, ok := p.lookup(name)
	if !ok {
		return -1 << 30
	}
	return p.slots[i]
}

// substitute replaces @params with their values.
func (p *planner) substitute(e *Expr) error {
	switch x := (*e).(type) {
	case *Param:
		v, ok := p.params[x.Name]
		if !ok {
			return invalid("the parameter @%s (line %d, column %d) has no value", x.Name, x.At.Line, x.At.Col)
		}
		switch v := v.(type) {
		case int:
			*e = &Literal{Value: float64(v), At: x.At}
		case []string:
			arr := &Array{At: x.At}
			for _, s := range v {
				arr.Elems = append(arr.Elems, &Literal{Value: s, At: x.At})
			}
			*e = arr
		case nil, bool, float64, string:
			*e = &Literal{Value: v, At: x.At}
		default:
			return invalid("the parameter @%s has an unsupported type %T", x.Name, v)
		}
	case *Unary:
		return p.substitute(&x.X)
	case *Binary:
		if err := p.substitute(&x.X); err != nil {
			return err
		}
		return p.substitute(&x.Y)
	case *In:
		if err := p.substitute(&x.X); err != nil {
			return err
		}
		for i := range x.Set.Elems {
			if err := p.substitute(&x.Set.Elems[i]); err != nil {
				return err
			}
		}
	case *Call:
		for i := range x.Args {
			if err := p.substitute(&x.Args[i]); err != nil {
				return err
			}
		}
	case *Array:
		for i := range x.Elems {
			if err := p.substitute(&x.Elems[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func splitAnd(e Expr, out *[]Expr) {
	if e == nil {
		return
	}
	if b, ok := e.(*Binary); ok && b.Op == "AND" {
		splitAnd(b.X, out)
		splitAnd(b.Y, out)
		return
	}
	*out = append(*out, e)
}

// refSlots collects the collection slots an expression reads: twin slots
// as s, relationship slots as -(s+1).
func (p *planner) refSlots(e Expr, out map[int]bool) {
	switch x := e.(type) {
	case *Ref:
		if i, ok := p.lookup(x.Path[0]); ok {
			out[p.slots[i]] = true
		} else if len(p.names) == 1 {
			out[p.slots[0]] = true
		}
	case *Unary:
		p.refSlots(x.X, out)
	case *Binary:
		p.refSlots(x.X, out)
		p.refSlots(x.Y, out)
	case *In:
		p.refSlots(x.X, out)
		for _, y := range x.Set.Elems {
			p.refSlots(y, out)
		}
	case *Call:
		if x.Name == "IS_OF_MODEL" {
			if c, ok := p.modelCollection(x); ok {
				out[c] = true
				return
			}
		}
		for _, a := range x.Args {
			p.refSlots(a, out)
		}
	case *Array:
		for _, y := range x.Elems {
			p.refSlots(y, out)
		}
	}
}

// candidate is an index-usable conjunct on a twin or relationship slot.
type candidate struct {
	slot int
	acc  access
	cost int
}

// idRef reports whether e is <collection>.$dtId (or the bare $dtId of the
// only collection) and which slot it reads.
func (p *planner) sysRef(e Expr, name string) (int, bool) {
	r, ok := e.(*Ref)
	if !ok {
		return 0, false
	}
	switch len(r.Path) {
	case 1:
		if len(p.names) == 1 && strings.EqualFold(r.Path[0], name) {
			return p.slots[0], true
		}
	case 2:
		if i, ok := p.lookup(r.Path[0]); ok && strings.EqualFold(r.Path[1], name) {
			return p.slots[i], true
		}
	}
	return 0, false
}

// stringLits returns the distinct values of es when they are all string
// literals, pinning them.
func (p *planner) stringLits(es []Expr) ([]string, bool) {
	out := make([]string, 0, len(es))
	for _, e := range es {
		l, ok := e.(*Literal)
		if !ok {
			return nil, false
		}
		if _, ok := l.Value.(string); !ok {
			return nil, false
		}
	}
	for _, e := range es {
		l := e.(*Literal)
		p.pin(l)
		if s := l.Value.(string); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, true
}

// indexable recognizes conjuncts the indexes answer: $dtId = / IN,
// IS_OF_MODEL, and for relationships $sourceId / $targetId = / IN.
func (p *planner) indexable(e Expr) (candidate, bool) {
	idOf := func(x, y Expr, sys string) (candidate, bool) {
		if s, ok := p.sysRef(x, sys); ok {
			if l, ok := y.(*Literal); ok {
				if v, ok := l.Value.(string); ok {
					acc := access{ids: []string{v}}
					if p.reuse {
						acc.idArg = l.arg
					}
					return candidate{slot: s, acc: acc, cost: 1}, true
				}
			}
		}
		return candidate{}, false
	}
	try := func(sys string, kind accessKind) (candidate, bool) {
		switch x := e.(type) {
		case *Binary:
			if x.Op != "=" {
				break
			}
			c, ok := idOf(x.X, x.Y, sys)
			if !ok {
				c, ok = idOf(x.Y, x.X, sys)
			}
			if ok {
				c.acc.kind = kind
				return c, true
			}
		case *In:
			if x.Not || x.Set.Elided {
				break
			}
			if s, ok := p.sysRef(x.X, sys); ok {
				if ids, ok := p.stringLits(x.Set.Elems); ok {
					return candidate{slot: s, acc: access{kind: kind, ids: ids}, cost: len(ids)}, true
				}
			}
		}
		return candidate{}, false
	}
	if p.pl.rels {
		if c, ok := try("$sourceId", relsBySource); ok && c.slot < 0 {
			return c, true
		}
		if c, ok := try("$targetId", relsByTarget); ok && c.slot < 0 {
			c.cost *= 2
			return c, true
		}
		return candidate{}, false
	}
	if c, ok := try("$dtId", lookupIDs); ok && c.slot >= 0 {
		return c, true
	}
	if call, ok := e.(*Call); ok && call.Name == "IS_OF_MODEL" {
		slot, model, exact, err := p.modelArgs(call)
		if err == nil && slot >= 0 {
			return candidate{slot: slot, acc: access{kind: scanModels, models: p.modelSet(model, exact)}, cost: 1 << 20}, true
		}
	}
	return candidate{}, false
}

func (p *planner) access(conj []Expr) error {
	pl := p.pl
	// Choose the anchor: the collection with the cheapest index access,
	// ties going to the one named first.
	best := candidate{slot: 0, cost: 1 << 30}
	if pl.rels {
		best.slot = -1
	}
	used := -1 // the conjunct the access path answers
	for i, e := range conj {
		if c, ok := p.indexable(e); ok && c.cost < best.cost {
			best, used = c, i
		}
	}
	if best.cost == 1<<30 {
		best.acc = access{kind: scanAll}
	}
	pl.access = best.acc
	if pl.rels {
		pl.anchor = 0
	} else {
		pl.anchor = best.slot
	}
	// Order the expansions breadth-first from the anchor.
	bound := map[int]bool{}
	if pl.rels {
		bound[-1] = true
	} else {
		bound[pl.anchor] = true
	}
	edges := p.edges()
	for len(edges) > 0 {
		progressed := false
		for i := 0; i < len(edges); i++ {
			e := edges[i]
			var s step
			switch {
			case bound[e.from]:
				s = e
			case bound[e.to]:
				s = e
				s.from, s.to = e.to, e.from
				switch e.dir {
				case Right:
					s.dir = Left
				case Left:
					s.dir = Right
				}
			default:
				continue
			}
			bound[s.to] = true
			if s.rel >= 0 {
				bound[-(s.rel + 1)] = true
			}
			pl.steps = append(pl.steps, s)
			edges = slices.Delete(edges, i, i+1)
			i--
			progressed = true
		}
		if !progressed {
			return invalid("the query's collections are not all related to each other")
		}
	}
	// Attach each conjunct after the first step that binds everything it
	// reads.
	boundAfter := make([]map[int]bool, len(pl.steps)+1)
	cur := map[int]bool{}
	if pl.rels {
		cur[-1] = true
	} else {
		cur[pl.anchor] = true
	}
	boundAfter[0] = maps(cur)
	for i, s := range pl.steps {
		cur[s.to] = true
		if s.rel >= 0 {
			cur[-(s.rel + 1)] = true
		}
		boundAfter[i+1] = maps(cur)
	}
	for ci, e := range conj {
		f, err := p.compileBool(e)
		if err != nil {
			return err
		}
		if ci == used {
			// The access path yields exactly the anchors that satisfy
			// it: testing it again per anchor is wasted work.
			continue
		}
		if pl.access.kind == scanModels && pl.access.filt == nil {
			if slot, prop, test, ok := p.numberCondition(e); ok && slot == pl.anchor {
				// A scan of the model index may leave this one to
				// the graph.
				pl.access.prop, pl.access.test, pl.access.filt = prop, test, f
				continue
			}
		}
		need := map[int]bool{}
		p.refSlots(e, need)
		if len(need) == 0 {
			pl.constFilt = append(pl.constFilt, f)
			continue
		}
		at := -1
		for k := range boundAfter {
			ok := true
			for s := range need {
				if !boundAfter[k][s] {
					ok = false
					break
				}
			}
			if ok {
				at = k
				break
			}
		}
		if at <= 0 {
			pl.anchorFilt = append(pl.anchorFilt, f)
		} else {
			pl.steps[at-1].filters = append(pl.steps[at-1].filters, f)
		}
	}
	return nil
}

func maps(m map[int]bool) map[int]bool {
	c := make(map[int]bool, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// edges lists the pattern's relationships as steps from left to right.
func (p *planner) edges() []step {
	st := p.stmt
	var out []step
	if st.Match != nil {
		rel := 0
		for i, e := range st.Match.Edges {
			s := step{from: i, to: i + 1, rel: -1, dir: e.Dir, names: e.Names, min: e.MinHops, max: e.MaxHops}
			if e.Var != "" {
				s.rel = rel
				rel++
			}
			out = append(out, s)
		}
		return out
	}
	rel := 0
	for _, j := range st.Joins {
		s := step{from: p.slotOf(j.Source), to: p.slotOf(j.Alias), rel: -1, dir: Right, names: []string{j.Name}, min: 1, max: 1}
		if j.RelAlias != "" {
			s.rel = rel
			rel++
		}
		out = append(out, s)
	}
	return out
}

// modelCollection returns the twin slot an IS_OF_MODEL call tests.
func (p *planner) modelCollection(c *Call) (int, bool) {
	slot, _, _, err := p.modelArgs(c)
	return slot, err == nil
}

// modelArgs reads IS_OF_MODEL([collection,] 'dtmi' [, exact]).
func (p *planner) modelArgs(c *Call) (slot int, model string, exact bool, err error) {
	args := c.Args
	usage := "IS_OF_MODEL takes an optional twin collection, a model id string and an optional exact: IS_OF_MODEL(T, 'dtmi:example:Room;1', exact)"
	if len(args) == 0 || len(args) > 3 {
		return 0, "", false, invalid("%s (line %d, column %d)", usage, c.At.Line, c.At.Col)
	}
	slot = -1
	if r, ok := args[0].(*Ref); ok && len(r.Path) == 1 {
		i, found := p.lookup(r.Path[0])
		if !found {
			return 0, "", false, invalid("IS_OF_MODEL (line %d, column %d): %s is not a collection of the query", c.At.Line, c.At.Col, r.Path[0])
		}
		if p.slots[i] < 0 {
			return 0, "", false, invalid("IS_OF_MODEL (line %d, column %d): %s is a relationship; IS_OF_MODEL tests twins", c.At.Line, c.At.Col, r.Path[0])
		}
		slot = p.slots[i]
		args = args[1:]
	}
	if len(args) == 0 {
		return 0, "", false, invalid("%s (line %d, column %d)", usage, c.At.Line, c.At.Col)
	}
	l, ok := args[0].(*Literal)
	if !ok {
		return 0, "", false, invalid("IS_OF_MODEL (line %d, column %d) expects a model id string such as 'dtmi:example:Room;1', found %s", c.At.Line, c.At.Col, args[0])
	}
	if model, ok = l.Value.(string); !ok {
		return 0, "", false, invalid("IS_OF_MODEL (line %d, column %d) expects a model id string, found %s", c.At.Line, c.At.Col, l)
	}
	p.pin(l)
	args = args[1:]
	if len(args) == 1 {
		r, ok := args[0].(*Ref)
		if !ok || len(r.Path) != 1 || !strings.EqualFold(r.Path[0], "exact") {
			return 0, "", false, invalid("IS_OF_MODEL (line %d, column %d): the last argument may only be exact, found %s", c.At.Line, c.At.Col, args[0])
		}
		exact = true
	} else if len(args) > 1 {
		return 0, "", false, invalid("%s (line %d, column %d)", usage, c.At.Line, c.At.Col)
	}
	if slot < 0 {
		twins := 0
		for _, s := range p.slots {
			if s >= 0 {
				twins++
				slot = s
			}
		}
		if twins != 1 {
			return 0, "", false, invalid("IS_OF_MODEL (line %d, column %d) must name the twin collection it tests when the query has several: IS_OF_MODEL(T, %s)", c.At.Line, c.At.Col, l)
		}
	}
	return slot, model, exact, nil
}

// modelSet returns the models IS_OF_MODEL(model) accepts: model, every
// known version of it at least as new, and unless exact every model that
// extends one of those, transitively.
func (p *planner) modelSet(model string, exact bool) []string {
	base, ver := splitVersion(model)
	set := []string{model}
	for _, m := range p.g.Models() {
		if m == model {
			continue
		}
		if b, v := splitVersion(m); b == base && v >= ver {
			set = append(set, m)
		}
	}
	if !exact {
		for _, m := range slices.Clone(set) {
			for _, d := range p.g.Descendants(m) {
				if !slices.Contains(set, d) {
					set = append(set, d)
				}
			}
		}
	}
	slices.Sort(set)
	return set
}

// splitVersion splits "dtmi:a:b;3" into "dtmi:a:b" and 3; a DTMI without a
// version has version 0.
func splitVersion(id string) (string, int) {
	i := strings.LastIndexByte(id, ';')
	if i < 0 {
		return id, 0
	}
	v, err := strconv.Atoi(id[i+1:])
	if err != nil {
		return id, 0
	}
	return id[:i], v
}

// output plans the SELECT list, GROUP BY and ORDER BY.
func (p *planner) output() error {
	st, pl := p.stmt, p.pl
	hasAgg := len(st.GroupBy) > 0
	for _, it := range st.Items {
		if containsAgg(it.Expr) {
			hasAgg = true
		}
	}
	if st.Where != nil && containsAgg(st.Where) {
		return invalid("aggregates such as COUNT() cannot appear in WHERE")
	}
	switch {
	case st.Star && hasAgg:
		return invalid("SELECT * cannot be combined with GROUP BY; select the grouped values and aggregates")
	case st.Star && len(p.names) == 1:
		pl.mode = outStar
	case st.Star:
		pl.mode = outStarMulti
	case hasAgg:
		pl.mode = outAggregate
	default:
		pl.mode = outItems
	}
	if pl.mode == outAggregate {
		if err := p.aggregateOutput(); err != nil {
			return err
		}
	} else if pl.mode == outItems {
		for i, it := range st.Items {
			f, err := p.compile(it.Expr)
			if err != nil {
				return err
			}
			c := column{name: p.columnName(it, i), eval: f}
			if slot, ok := p.sysRef(it.Expr, "$dtId"); ok && slot >= 0 {
				c.str = func(r *row) string { return r.twins[slot].ID() }
			}
			pl.cols = append(pl.cols, c)
		}
	}
	if err := p.checkColumns(); err != nil {
		return err
	}
	for _, o := range st.OrderBy {
		pl.desc = append(pl.desc, o.Desc)
		var f evalFn
		if r, ok := o.Expr.(*Ref); ok && len(r.Path) == 1 {
			for _, c := range pl.cols {
				if c.name == r.Path[0] {
					f = c.eval
				}
			}
		}
		if f == nil {
			var err error
			if f, err = p.compileIn(o.Expr, pl.mode == outAggregate); err != nil {
				return err
			}
		}
		pl.order = append(pl.order, f)
	}
	return nil
}

func (p *planner) checkColumns() error {
	seen := map[string]bool{}
	for _, c := range p.pl.cols {
		if seen[c.name] {
			return invalid("two columns are named %s; name them apart with AS", c.name)
		}
		seen[c.name] = true
	}
	return nil
}

// columnName is the key of a projection: its alias, the collection name,
// the last property name, the function name, or $N.
func (p *planner) columnName(it SelectItem, i int) string {
	if it.Alias != "" {
		return it.Alias
	}
	switch x := it.Expr.(type) {
	case *Ref:
		return x.Path[len(x.Path)-1]
	case *Call:
		if aggregates[x.Name] {
			return x.Name
		}
	}
	return "$" + strconv.Itoa(i+1)
}

var aggregates = map[string]bool{"COUNT": true, "SUM": true, "AVG": true, "MIN": true, "MAX": true}

func containsAgg(e Expr) bool {
	switch x := e.(type) {
	case *Call:
		if aggregates[x.Name] {
			return true
		}
		for _, a := range x.Args {
			if containsAgg(a) {
				return true
			}
		}
	case *Unary:
		return containsAgg(x.X)
	case *Binary:
		return containsAgg(x.X) || containsAgg(x.Y)
	case *In:
		return containsAgg(x.X)
	}
	return false
}

func (p *planner) aggregateOutput() error {
	st, pl := p.stmt, p.pl
	for _, g := range st.GroupBy {
		if containsAgg(g) {
			return invalid("GROUP BY %s: aggregates cannot be grouped on", g)
		}
		f, err := p.compile(g)
		if err != nil {
			return err
		}
		pl.groupBy = append(pl.groupBy, f)
		p.groupStr = append(p.groupStr, g.String())
	}
	// COUNT() alone, ungrouped: counted while scanning.
	if len(st.GroupBy) == 0 && len(st.Items) == 1 && !st.Distinct && len(st.OrderBy) == 0 {
		if c, ok := st.Items[0].Expr.(*Call); ok && c.Name == "COUNT" && len(c.Args) == 0 {
			pl.mode = outCount
			pl.cols = []column{{name: p.columnName(st.Items[0], 0)}}
			return nil
		}
	}
	for i, it := range st.Items {
		f, err := p.compileIn(it.Expr, true)
		if err != nil {
			return err
		}
		pl.cols = append(pl.cols, column{name: p.columnName(it, i), eval: f})
	}
	return nil
}

func (p *planner) describe() {
	pl := p.pl
	var lines []string
	name := func(slot int) string {
		if slot < 0 {
			n := pl.relNames[-slot-1]
			if n == "" {
				return "RELATIONSHIPS"
			}
			return n
		}
		if n := pl.twinNames[slot]; n != "" {
			return n
		}
		return "DIGITALTWINS"
	}
	anchor := pl.anchor
	if pl.rels {
		anchor = -1
	}
	switch pl.access.kind {
	case lookupIDs:
		lines = append(lines, fmt.Sprintf("lookup %s by $dtId %s", name(anchor), quoteList(pl.access.ids)))
	case scanModels:
		lines = append(lines, fmt.Sprintf("scan %s by model index %s", name(anchor), quoteList(pl.access.models)))
	case relsBySource:
		lines = append(lines, fmt.Sprintf("scan %s by source %s", name(anchor), quoteList(pl.access.ids)))
	case relsByTarget:
		lines = append(lines, fmt.Sprintf("scan %s by target %s", name(anchor), quoteList(pl.access.ids)))
	default:
		if pl.rels {
			lines = append(lines, "scan all relationships")
		} else {
			lines = append(lines, fmt.Sprintf("scan all twins as %s", name(anchor)))
		}
	}
	n := len(pl.anchorFilt) + len(pl.constFilt)
	if pl.access.filt != nil {
		n++
	}
	if n > 0 {
		lines = append(lines, fmt.Sprintf("  filter (%d conditions)", n))
	}
	for _, s := range pl.steps {
		arrow := map[Direction]string{Right: "outgoing", Left: "incoming", Both: "outgoing and incoming"}[s.dir]
		rels := "any relationship"
		if len(s.names) > 0 {
			rels = strings.Join(s.names, "|")
		}
		hops := ""
		if s.min != 1 || s.max != 1 {
			hops = fmt.Sprintf(", %d..%d hops, no twin twice on a path", s.min, s.max)
		}
		via := ""
		if s.rel >= 0 {
			via = " as " + name(-(s.rel + 1))
		}
		lines = append(lines, fmt.Sprintf("expand %s -> %s: %s %s%s%s", name(s.from), name(s.to), arrow, rels, via, hops))
		if len(s.filters) > 0 {
			lines = append(lines, fmt.Sprintf("  filter (%d conditions)", len(s.filters)))
		}
	}
	st := p.stmt
	switch pl.mode {
	case outCount:
		lines = append(lines, "count rows")
	case outAggregate:
		if len(pl.groupBy) > 0 {
			lines = append(lines, fmt.Sprintf("group by %s", strings.Join(p.groupStr, ", ")))
		}
		lines = append(lines, fmt.Sprintf("aggregate %d columns", len(pl.cols)))
	}
	if st.Distinct {
		lines = append(lines, "distinct")
	}
	if len(st.OrderBy) > 0 {
		lines = append(lines, fmt.Sprintf("sort by %d keys", len(st.OrderBy)))
	}
	if st.Top >= 0 {
		lines = append(lines, fmt.Sprintf("stop after %d rows", st.Top))
	}
	pl.explain = lines
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
