package query

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Limits the parser enforces so that hostile input stays cheap.
const (
	// MaxQueryLength bounds the query text in bytes (ADT allows 8,000
	// characters; twinlog allows more).
	MaxQueryLength = 64 << 10
	maxDepth       = 200
)

// Parse parses one query. Keywords and function names are case-insensitive;
// names (aliases, properties) are case-sensitive.
func Parse(text string) (*Statement, error) {
	stmts, err := parse(text)
	if err != nil {
		return nil, err
	}
	if len(stmts) != 1 {
		return nil, invalid("the text holds %d queries; send one at a time", len(stmts))
	}
	return stmts[0], nil
}

// ParseScript parses one or more queries, each starting with SELECT (or
// EXPLAIN) and optionally ended by ';', as in a documentation snippet.
func ParseScript(text string) ([]*Statement, error) { return parse(text) }

func parse(text string) ([]*Statement, error) {
	if len(text) > MaxQueryLength {
		return nil, invalid("the query is %d bytes long; the limit is %d", len(text), MaxQueryLength)
	}
	toks, err := lex(text)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	var out []*Statement
	for {
		for p.punct(";") {
		}
		if p.peek().kind == tEOF {
			break
		}
		st, err := p.statement()
		if err != nil {
			return nil, err
		}
		out = append(out, st)
		if t := p.peek(); t.kind != tEOF && !p.isPunct(";") && !p.isKeyword("SELECT") && !p.isKeyword("EXPLAIN") {
			return nil, p.expected("the end of the query")
		}
	}
	if len(out) == 0 {
		return nil, invalid("the query is empty; start it with SELECT")
	}
	return out, nil
}

type parser struct {
	toks  []token
	i     int
	depth int
}

func (p *parser) peek() token       { return p.toks[p.i] }
func (p *parser) peekN(n int) token { return p.toks[min(p.i+n, len(p.toks)-1)] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isKeyword(kw string) bool {
	t := p.peek()
	return t.kind == tIdent && strings.EqualFold(t.text, kw)
}

func (p *parser) keyword(kw string) bool {
	if p.isKeyword(kw) {
		p.i++
		return true
	}
	return false
}

func (p *parser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tPunct && t.text == s
}

func (p *parser) punct(s string) bool {
	if p.isPunct(s) {
		p.i++
		return true
	}
	return false
}

func (p *parser) expected(what string) error {
	t := p.peek()
	return syntaxError(t.pos, "expected %s, found %s", what, t)
}

func (p *parser) expectKeyword(kw string) error {
	if !p.keyword(kw) {
		return p.expected(kw)
	}
	return nil
}

func (p *parser) expectPunct(s, what string) error {
	if !p.punct(s) {
		if what == "" {
			what = "'" + s + "'"
		}
		return p.expected(what)
	}
	return nil
}

// name reads an alias or property name: a plain identifier that is not a
// reserved keyword, or an [[escaped]] one.
func (p *parser) name(what string) (string, Pos, error) {
	t := p.peek()
	switch t.kind {
	case tEscaped:
		p.i++
		return t.text, t.pos, nil
	case tIdent:
		if isReserved(t.text) {
			return "", t.pos, syntaxError(t.pos, "expected %s, found the keyword %s (escape a name that is a keyword as [[%s]])", what, strings.ToUpper(t.text), t.text)
		}
		p.i++
		return t.text, t.pos, nil
	}
	return "", t.pos, p.expected(what)
}

func (p *parser) statement() (*Statement, error) {
	st := &Statement{Top: -1}
	if p.keyword("EXPLAIN") {
		st.Explain = true
	}
	if err := p.expectKeyword("SELECT"); err != nil {
		return nil, err
	}
	if p.keyword("DISTINCT") {
		st.Distinct = true
	}
	if p.isKeyword("TOP") && p.peekN(1).kind == tPunct && p.peekN(1).text == "(" {
		p.i += 2
		t := p.next()
		if t.kind != tNumber || t.num != math.Trunc(t.num) || t.num < 0 || t.num > math.MaxInt32 {
			return nil, syntaxError(t.pos, "TOP takes a non-negative whole number, found %s", t)
		}
		st.Top = int(t.num)
		if err := p.expectPunct(")", "')' after the TOP count"); err != nil {
			return nil, err
		}
	}
	switch {
	case p.punct("*"):
		st.Star = true
	case p.isKeyword("FROM") && st.Top >= 0:
		st.Star = true // SELECT TOP(5) FROM ...
	default:
		for {
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			item := SelectItem{Expr: e, Pos: e.Pos()}
			if p.keyword("AS") {
				// Any word can name a column: AS count, AS avg.
				if t := p.peek(); t.kind == tIdent {
					p.i++
					item.Alias = t.text
				} else if item.Alias, _, err = p.name("a column name after AS"); err != nil {
					return nil, err
				}
			}
			st.Items = append(st.Items, item)
			if !p.punct(",") {
				break
			}
		}
	}
	if !p.keyword("FROM") {
		t := p.peek()
		if t.kind == tIdent && (strings.EqualFold(t.text, "DIGITALTWINS") || strings.EqualFold(t.text, "RELATIONSHIPS")) {
			return nil, syntaxError(t.pos, "expected FROM before %s", t.text)
		}
		return nil, p.expected("',' or FROM")
	}
	if err := p.from(st); err != nil {
		return nil, err
	}
	if p.keyword("WHERE") {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		st.Where = e
	}
	if p.keyword("GROUP") {
		if err := p.expectKeyword("BY"); err != nil {
			return nil, err
		}
		for {
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			st.GroupBy = append(st.GroupBy, e)
			if !p.punct(",") {
				break
			}
		}
	}
	if p.keyword("ORDER") {
		if err := p.expectKeyword("BY"); err != nil {
			return nil, err
		}
		for {
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			it := OrderItem{Expr: e}
			if p.keyword("DESC") {
				it.Desc = true
			} else {
				p.keyword("ASC")
			}
			st.OrderBy = append(st.OrderBy, it)
			if !p.punct(",") {
				break
			}
		}
	}
	if p.isKeyword("AS") && p.peekN(1).kind == tIdent && strings.EqualFold(p.peekN(1).text, "OF") {
		p.i += 2
		a, err := p.asOf()
		if err != nil {
			return nil, err
		}
		st.AsOf = a
	}
	return st, nil
}

// asOf reads the operand of AS OF: a quoted RFC 3339 time or a whole
// log position.
func (p *parser) asOf() (*AsOf, error) {
	t := p.next()
	switch t.kind {
	case tString:
		tm, err := time.Parse(time.RFC3339Nano, t.text)
		if err != nil {
			return nil, syntaxError(t.pos, "AS OF takes an RFC 3339 time such as '2026-11-24T09:26:00Z' or a log position, found '%s'", t.text)
		}
		return &AsOf{Time: tm, At: t.pos}, nil
	case tNumber:
		pos, err := strconv.ParseUint(t.text, 10, 64)
		if err != nil || pos == 0 {
			return nil, syntaxError(t.pos, "AS OF takes a log position (a whole number from 1) or a quoted RFC 3339 time, found %s", t.text)
		}
		return &AsOf{Position: pos, At: t.pos}, nil
	}
	return nil, syntaxError(t.pos, "AS OF takes a quoted RFC 3339 time or a log position, found %s", t)
}

func (p *parser) from(st *Statement) error {
	t := p.peek()
	if t.kind == tPunct && t.text == "(" {
		return syntaxError(t.pos, "sub-queries are not supported; FROM takes DIGITALTWINS or RELATIONSHIPS (filter with WHERE, or relate twins with JOIN or MATCH)")
	}
	switch {
	case p.keyword("DIGITALTWINS"):
		st.From = DigitalTwins
	case p.keyword("RELATIONSHIPS"):
		st.From = Relationships
	default:
		return p.expected("DIGITALTWINS or RELATIONSHIPS after FROM")
	}
	if t := p.peek(); t.kind == tEscaped || t.kind == tIdent && !isReserved(t.text) {
		st.FromAlias, _, _ = p.name("")
	}
	if p.isKeyword("MATCH") {
		mt := p.next()
		if st.From != DigitalTwins || st.FromAlias != "" {
			return syntaxError(mt.pos, "MATCH follows FROM DIGITALTWINS directly, without an alias")
		}
		m, err := p.pattern()
		if err != nil {
			return err
		}
		st.Match = m
	}
	for p.isKeyword("JOIN") {
		jt := p.next()
		if st.From != DigitalTwins {
			return syntaxError(jt.pos, "JOIN cannot follow FROM RELATIONSHIPS; query FROM DIGITALTWINS and JOIN ... RELATED")
		}
		if st.Match != nil {
			return syntaxError(jt.pos, "JOIN cannot be combined with MATCH; add the relationship to the MATCH pattern")
		}
		j := Join{Pos: jt.pos}
		var err error
		if j.Alias, _, err = p.name("the name of the joined twins after JOIN"); err != nil {
			return err
		}
		if err := p.expectKeyword("RELATED"); err != nil {
			return err
		}
		if j.Source, _, err = p.name("the alias of the source twin after RELATED"); err != nil {
			return err
		}
		if err := p.expectPunct(".", "'.' and the relationship name after RELATED "+j.Source); err != nil {
			return err
		}
		if j.Name, _, err = p.name("a relationship name"); err != nil {
			return err
		}
		if t := p.peek(); t.kind == tEscaped || t.kind == tIdent && !isReserved(t.text) {
			j.RelAlias, _, _ = p.name("")
		}
		st.Joins = append(st.Joins, j)
	}
	if t := p.peek(); t.kind == tIdent && strings.EqualFold(t.text, "MATCH") {
		return syntaxError(t.pos, "only one MATCH is allowed, directly after FROM DIGITALTWINS")
	}
	return nil
}

func (p *parser) pattern() (*Pattern, error) {
	m := &Pattern{}
	node := func() error {
		if err := p.expectPunct("(", "'(' and a twin name"); err != nil {
			return err
		}
		name, pos, err := p.name("a twin name inside '( )'")
		if err != nil {
			return err
		}
		if !p.isPunct(")") {
			return p.expected("')' to close (" + name)
		}
		p.i++
		m.Nodes = append(m.Nodes, PatternNode{Name: name, Pos: pos})
		return nil
	}
	if err := node(); err != nil {
		return nil, err
	}
	for p.isPunct("-") || p.isPunct("<") {
		e, err := p.edge()
		if err != nil {
			return nil, err
		}
		m.Edges = append(m.Edges, e)
		if err := node(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (p *parser) edge() (PatternEdge, error) {
	e := PatternEdge{MinHops: 1, MaxHops: 1, Pos: p.peek().pos, Dir: Both}
	left := p.punct("<")
	if err := p.expectPunct("-", "'-' in a relationship such as -[]->"); err != nil {
		return e, err
	}
	if err := p.expectPunct("[", "'[' in a relationship such as -[]->"); err != nil {
		return e, err
	}
	// [var], [var:a|b], [:a|b], [a|b], [a|b*2], [*1..3], [r:a*1]
	var names []string
	if t := p.peek(); t.kind == tIdent || t.kind == tEscaped {
		for {
			n, _, err := p.name("a relationship name")
			if err != nil {
				return e, err
			}
			names = append(names, n)
			if !p.punct("|") {
				break
			}
		}
	}
	colon := p.punct(":")
	if colon {
		if len(names) > 1 {
			return e, syntaxError(e.Pos, "a relationship variable is one name, found %s before ':'", strings.Join(names, "|"))
		}
		if len(names) == 1 {
			e.Var = names[0]
		}
		names = nil
		for {
			n, _, err := p.name("a relationship name after ':'")
			if err != nil {
				return e, err
			}
			names = append(names, n)
			if !p.punct("|") {
				break
			}
		}
	}
	hops := p.isPunct("*")
	if !colon && len(names) == 1 && !hops {
		e.Var, names = names[0], nil // [Rel]
	}
	e.Names = names
	if p.punct("*") {
		lo, hi := -1, -1
		if t := p.peek(); t.kind == tNumber {
			p.i++
			n, err := hopCount(t)
			if err != nil {
				return e, err
			}
			lo = n
		}
		if p.punct("..") {
			t := p.peek()
			if t.kind != tNumber {
				return e, p.expected("the largest hop count after '..'")
			}
			p.i++
			n, err := hopCount(t)
			if err != nil {
				return e, err
			}
			hi = n
			if lo < 0 {
				lo = 0
			}
			if hi <= lo {
				return e, syntaxError(t.pos, "the hop range *%d..%d is empty (the start is exclusive)", lo, hi)
			}
			e.MinHops, e.MaxHops = lo+1, hi
		} else {
			if lo < 0 {
				return e, p.expected("a hop count after '*', as in [*3] or [*1..3]")
			}
			if lo == 0 {
				return e, syntaxError(p.peek().pos, "a relationship spans at least one hop")
			}
			e.MinHops, e.MaxHops = lo, lo
		}
	}
	if err := p.expectPunct("]", "']' to close the relationship"); err != nil {
		return e, err
	}
	if err := p.expectPunct("-", "'-' after ']'"); err != nil {
		return e, err
	}
	right := p.punct(">")
	switch {
	case left && right:
		return e, syntaxError(e.Pos, "a relationship has one direction: <-[]- or -[]->, not both")
	case left:
		e.Dir = Left
	case right:
		e.Dir = Right
	}
	return e, nil
}

func hopCount(t token) (int, error) {
	if t.num != math.Trunc(t.num) || t.num < 0 || t.num > 1000 {
		return 0, syntaxError(t.pos, "a hop count is a whole number, found %s", t.text)
	}
	return int(t.num), nil
}

// Expressions, loosest first: OR, AND, NOT, comparison / IN, + -, * / %,
// unary minus, primary.

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return syntaxError(p.peek().pos, "the expression nests deeper than %d levels", maxDepth)
	}
	return nil
}

func (p *parser) expr() (Expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	return p.or()
}

func (p *parser) or() (Expr, error) {
	x, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("OR") {
		t := p.next()
		y, err := p.and()
		if err != nil {
			return nil, err
		}
		x = &Binary{Op: "OR", X: x, Y: y, At: t.pos}
	}
	return x, nil
}

func (p *parser) and() (Expr, error) {
	x, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.isKeyword("AND") {
		t := p.next()
		y, err := p.not()
		if err != nil {
			return nil, err
		}
		x = &Binary{Op: "AND", X: x, Y: y, At: t.pos}
	}
	return x, nil
}

func (p *parser) not() (Expr, error) {
	if p.isKeyword("NOT") && !(p.peekN(1).kind == tIdent && strings.EqualFold(p.peekN(1).text, "IN")) {
		t := p.next()
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		x, err := p.not()
		if err != nil {
			return nil, err
		}
		return &Unary{Op: "NOT", X: x, At: t.pos}, nil
	}
	return p.comparison()
}

func (p *parser) comparison() (Expr, error) {
	x, err := p.additive()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if t.kind == tPunct {
		switch t.text {
		case "=", "!=", "<", ">", "<=", ">=":
			p.i++
			y, err := p.additive()
			if err != nil {
				return nil, err
			}
			return &Binary{Op: t.text, X: x, Y: y, At: t.pos}, nil
		}
	}
	not := false
	switch {
	case p.isKeyword("IN"), p.isKeyword("NIN"), p.isKeyword("NOT_IN"):
		not = !strings.EqualFold(t.text, "IN")
		p.i++
	case p.isKeyword("NOT") && p.peekN(1).kind == tIdent && strings.EqualFold(p.peekN(1).text, "IN"):
		not = true
		p.i += 2
	default:
		return x, nil
	}
	if !p.isPunct("[") {
		return nil, p.expected("an array such as ['a', 'b'] after " + strings.ToUpper(t.text))
	}
	arr, err := p.array()
	if err != nil {
		return nil, err
	}
	return &In{X: x, Set: arr, Not: not, At: t.pos}, nil
}

func (p *parser) additive() (Expr, error) {
	x, err := p.multiplicative()
	if err != nil {
		return nil, err
	}
	for p.isPunct("+") || p.isPunct("-") {
		t := p.next()
		y, err := p.multiplicative()
		if err != nil {
			return nil, err
		}
		x = &Binary{Op: t.text, X: x, Y: y, At: t.pos}
	}
	return x, nil
}

func (p *parser) multiplicative() (Expr, error) {
	x, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.isPunct("*") || p.isPunct("/") || p.isPunct("%") {
		t := p.next()
		y, err := p.unary()
		if err != nil {
			return nil, err
		}
		x = &Binary{Op: t.text, X: x, Y: y, At: t.pos}
	}
	return x, nil
}

func (p *parser) unary() (Expr, error) {
	if p.isPunct("-") || p.isPunct("+") {
		t := p.next()
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		if l, ok := x.(*Literal); ok {
			if f, ok := l.Value.(float64); ok {
				if t.text == "-" {
					f = -f
				}
				return &Literal{Value: f, At: t.pos}, nil
			}
		}
		return &Unary{Op: t.text, X: x, At: t.pos}, nil
	}
	return p.primary()
}

func (p *parser) array() (*Array, error) {
	open := p.next()
	arr := &Array{At: open.pos}
	if p.punct("]") {
		return arr, nil
	}
	for {
		if p.punct("..") {
			arr.Elided = true
		}
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		arr.Elems = append(arr.Elems, e)
		if p.punct("]") {
			return arr, nil
		}
		if !p.punct(",") {
			return nil, p.expected("',' or ']' in the array")
		}
	}
}

func (p *parser) primary() (Expr, error) {
	t := p.peek()
	switch t.kind {
	case tString:
		p.i++
		return &Literal{Value: t.text, At: t.pos, arg: t.ord}, nil
	case tNumber:
		p.i++
		return &Literal{Value: t.num, At: t.pos}, nil
	case tParam:
		p.i++
		return &Param{Name: t.text, At: t.pos}, nil
	case tPunct:
		switch t.text {
		case "(":
			p.i++
			x, err := p.expr()
			if err != nil {
				return nil, err
			}
			if err := p.expectPunct(")", "')'"); err != nil {
				return nil, err
			}
			return x, nil
		case "[":
			return p.array()
		}
	case tIdent:
		if n := p.peekN(1); n.kind == tPunct && n.text == "(" {
			return p.call()
		}
		switch strings.ToUpper(t.text) {
		case "TRUE":
			p.i++
			return &Literal{Value: true, At: t.pos}, nil
		case "FALSE":
			p.i++
			return &Literal{Value: false, At: t.pos}, nil
		case "NULL":
			p.i++
			return &Literal{Value: nil, At: t.pos}, nil
		case "SELECT":
			return nil, syntaxError(t.pos, "sub-queries are not supported")
		}
		if isReserved(t.text) {
			return nil, syntaxError(t.pos, "expected a value, found the keyword %s (escape a name that is a keyword as [[%s]])", strings.ToUpper(t.text), t.text)
		}
		return p.ref()
	case tEscaped, tSys:
		return p.ref()
	}
	return nil, p.expected("a value, name or function")
}

func (p *parser) ref() (Expr, error) {
	first := p.next()
	r := &Ref{Path: []string{first.text}, At: first.pos}
	for p.isPunct(".") {
		p.i++
		t := p.peek()
		switch t.kind {
		case tIdent, tEscaped, tSys:
			p.i++
			r.Path = append(r.Path, t.text)
		case tNumber:
			return nil, syntaxError(t.pos, "a key that starts with a digit must be escaped: [[%s]]", t.text)
		default:
			return nil, p.expected("a property name after '.'")
		}
	}
	return r, nil
}

func (p *parser) call() (Expr, error) {
	t := p.next()
	p.i++ // (
	c := &Call{Name: strings.ToUpper(t.text), At: t.pos}
	if p.punct(")") {
		return c, nil
	}
	for {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		c.Args = append(c.Args, e)
		if p.punct(")") {
			return c, nil
		}
		if !p.punct(",") {
			return nil, p.expected("',' or ')' in the arguments of " + c.Name)
		}
	}
}
