package routes

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrFilter is wrapped by every filter syntax error.
var ErrFilter = errors.New("routes: invalid filter")

// Filter is a parsed ADT event route filter: `true`, `false`, or a boolean
// expression over CloudEvents attributes (type, source, subject, id,
// dataschema, datacontenttype, specversion, time) and $body.<path>, with
// AND, OR, NOT, parentheses, =, !=, <, <=, >, >= and the functions
// STARTS_WITH, ENDS_WITH and CONTAINS. Keywords and attribute names are
// case-insensitive; values are case-sensitive. An absent $body field is
// null; ordering comparisons and functions on values of different types are
// false.
type Filter struct {
	root node
	text string
}

// String returns the filter's canonical text.
func (f *Filter) String() string { return f.root.String() }

// Match reports whether ev passes the filter.
func (f *Filter) Match(ev *CloudEvent) bool {
	return truthy(f.root.eval(&evalCtx{ev: ev}))
}

// maxFilterLen and maxFilterDepth bound the input.
const (
	maxFilterLen   = 8000
	maxFilterDepth = 64
)

// ParseFilter parses filter text.
func ParseFilter(text string) (*Filter, error) {
	if len(text) > maxFilterLen {
		return nil, fmt.Errorf("%w: longer than %d characters", ErrFilter, maxFilterLen)
	}
	p := &parser{s: text}
	if err := p.lex(); err != nil {
		return nil, err
	}
	n, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("%w: unexpected %q at %d", ErrFilter, p.toks[p.pos].text, p.toks[p.pos].at)
	}
	return &Filter{root: n, text: text}, nil
}

type node interface {
	eval(c *evalCtx) any
	String() string
}

type evalCtx struct {
	ev      *CloudEvent
	body    any
	decoded bool
}

func (c *evalCtx) bodyValue() any {
	if !c.decoded {
		c.decoded = true
		if len(c.ev.Data) > 0 {
			d := json.NewDecoder(strings.NewReader(string(c.ev.Data)))
			d.UseNumber()
			var v any
			if d.Decode(&v) == nil {
				c.body = v
			}
		}
	}
	return c.body
}

type (
	litNode   struct{ v any } // string, float64, bool, nil
	attrNode  struct{ name string }
	bodyNode  struct{ path []string }
	notNode   struct{ x node }
	logicNode struct {
		and  bool
		l, r node
	}
	cmpNode struct {
		op   string
		l, r node
	}
	funcNode struct {
		name string
		l, r node
	}
)

func (n litNode) eval(*evalCtx) any { return n.v }
func (n litNode) String() string {
	switch v := n.v.(type) {
	case string:
		return "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return "null"
}

func (n attrNode) eval(c *evalCtx) any {
	e := c.ev
	switch n.name {
	case "type":
		return e.Type
	case "source":
		return e.Source
	case "subject":
		return e.Subject
	case "id":
		return e.ID
	case "dataschema":
		return e.DataSchema
	case "datacontenttype":
		return e.DataContentType
	case "specversion":
		return e.SpecVersion
	case "time":
		return e.Time
	case "traceparent":
		return e.TraceParent
	}
	return nil
}
func (n attrNode) String() string { return n.name }

func (n bodyNode) eval(c *evalCtx) any {
	v := c.bodyValue()
	for _, k := range n.path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	if num, ok := v.(json.Number); ok {
		f, err := num.Float64()
		if err != nil {
			return nil
		}
		return f
	}
	return v
}
func (n bodyNode) String() string { return "$body." + strings.Join(n.path, ".") }

func (n notNode) eval(c *evalCtx) any { return !truthy(n.x.eval(c)) }
func (n notNode) String() string      { return "NOT (" + n.x.String() + ")" }

func (n logicNode) eval(c *evalCtx) any {
	l := truthy(n.l.eval(c))
	if n.and {
		return l && truthy(n.r.eval(c))
	}
	return l || truthy(n.r.eval(c))
}
func (n logicNode) String() string {
	op := " OR "
	if n.and {
		op = " AND "
	}
	return "(" + n.l.String() + op + n.r.String() + ")"
}

func (n cmpNode) eval(c *evalCtx) any {
	l, r := n.l.eval(c), n.r.eval(c)
	switch n.op {
	case "=":
		return equal(l, r)
	case "!=":
		return !equal(l, r)
	}
	var d int
	switch a := l.(type) {
	case float64:
		b, ok := r.(float64)
		if !ok || math.IsNaN(a) || math.IsNaN(b) {
			return false
		}
		d = cmpFloat(a, b)
	case string:
		b, ok := r.(string)
		if !ok {
			return false
		}
		d = strings.Compare(a, b)
	default:
		return false
	}
	switch n.op {
	case "<":
		return d < 0
	case "<=":
		return d <= 0
	case ">":
		return d > 0
	case ">=":
		return d >= 0
	}
	return false
}
func (n cmpNode) String() string { return n.l.String() + " " + n.op + " " + n.r.String() }

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func equal(l, r any) bool {
	switch a := l.(type) {
	case nil:
		return r == nil
	case string:
		b, ok := r.(string)
		return ok && a == b
	case float64:
		b, ok := r.(float64)
		return ok && a == b
	case bool:
		b, ok := r.(bool)
		return ok && a == b
	}
	return false // objects and arrays compare to nothing
}

func (n funcNode) eval(c *evalCtx) any {
	a, ok1 := n.l.eval(c).(string)
	b, ok2 := n.r.eval(c).(string)
	if !ok1 || !ok2 {
		return false
	}
	switch n.name {
	case "STARTS_WITH":
		return strings.HasPrefix(a, b)
	case "ENDS_WITH":
		return strings.HasSuffix(a, b)
	}
	return strings.Contains(a, b)
}
func (n funcNode) String() string { return n.name + "(" + n.l.String() + ", " + n.r.String() + ")" }

func truthy(v any) bool { b, _ := v.(bool); return b }

// Lexer and recursive-descent parser.

type tokKind uint8

const (
	tokIdent tokKind = iota + 1
	tokString
	tokNumber
	tokOp
	tokLParen
	tokRParen
	tokComma
)

type token struct {
	kind tokKind
	text string
	at   int
}

type parser struct {
	s    string
	toks []token
	pos  int
}

func (p *parser) lex() error {
	s := p.s
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			p.toks = append(p.toks, token{tokLParen, "(", i})
			i++
		case c == ')':
			p.toks = append(p.toks, token{tokRParen, ")", i})
			i++
		case c == ',':
			p.toks = append(p.toks, token{tokComma, ",", i})
			i++
		case c == '\'' || c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return fmt.Errorf("%w: unterminated string at %d", ErrFilter, i)
			}
			p.toks = append(p.toks, token{tokString, b.String(), i})
			i = j + 1
		case c == '=' || c == '!' || c == '<' || c == '>':
			op := string(c)
			if i+1 < len(s) && (s[i+1] == '=' || c == '<' && s[i+1] == '>') {
				op = s[i : i+2]
			}
			switch op {
			case "!":
				return fmt.Errorf("%w: unexpected ! at %d", ErrFilter, i)
			case "==":
				op = "="
			case "<>":
				op = "!="
			}
			p.toks = append(p.toks, token{tokOp, op, i})
			i += len(op)
			if op == "=" && i < len(s) && s[i] == '=' {
				i++
			}
		case c == '-' || c == '.' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
				(s[j] == '-' || s[j] == '+') && (s[j-1] == 'e' || s[j-1] == 'E')) {
				j++
			}
			p.toks = append(p.toks, token{tokNumber, s[i:j], i})
			i = j
		case c == '$' || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(s) && (s[j] == '$' || s[j] == '_' || s[j] == '.' || s[j] == ':' || s[j] == ';' || s[j] == '-' ||
				s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			p.toks = append(p.toks, token{tokIdent, s[i:j], i})
			i = j
		default:
			return fmt.Errorf("%w: unexpected character %q at %d", ErrFilter, c, i)
		}
	}
	if len(p.toks) == 0 {
		return fmt.Errorf("%w: empty filter", ErrFilter)
	}
	return nil
}

func (p *parser) peek() *token {
	if p.pos < len(p.toks) {
		return &p.toks[p.pos]
	}
	return nil
}

func (p *parser) keyword(kw string) bool {
	if t := p.peek(); t != nil && t.kind == tokIdent && strings.EqualFold(t.text, kw) {
		p.pos++
		return true
	}
	return false
}

func (p *parser) errEnd(what string) error {
	if t := p.peek(); t != nil {
		return fmt.Errorf("%w: expected %s at %d, found %q", ErrFilter, what, t.at, t.text)
	}
	return fmt.Errorf("%w: expected %s at the end", ErrFilter, what)
}

func (p *parser) or(depth int) (node, error) {
	if depth > maxFilterDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", ErrFilter, maxFilterDepth)
	}
	l, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("OR") {
		r, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		l = logicNode{and: false, l: l, r: r}
	}
	return l, nil
}

func (p *parser) and(depth int) (node, error) {
	l, err := p.not(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("AND") {
		r, err := p.not(depth)
		if err != nil {
			return nil, err
		}
		l = logicNode{and: true, l: l, r: r}
	}
	return l, nil
}

func (p *parser) not(depth int) (node, error) {
	if p.keyword("NOT") {
		if depth > maxFilterDepth {
			return nil, fmt.Errorf("%w: nested deeper than %d", ErrFilter, maxFilterDepth)
		}
		x, err := p.not(depth + 1)
		if err != nil {
			return nil, err
		}
		return notNode{x}, nil
	}
	return p.cmp(depth)
}

var functions = []string{"STARTS_WITH", "ENDS_WITH", "CONTAINS"}

func (p *parser) cmp(depth int) (node, error) {
	t := p.peek()
	if t == nil {
		return nil, p.errEnd("a condition")
	}
	if t.kind == tokLParen {
		p.pos++
		x, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if t := p.peek(); t == nil || t.kind != tokRParen {
			return nil, p.errEnd(")")
		}
		p.pos++
		return x, nil
	}
	if t.kind == tokIdent {
		for _, fn := range functions {
			if strings.EqualFold(t.text, fn) {
				p.pos++
				if t := p.peek(); t == nil || t.kind != tokLParen {
					return nil, p.errEnd("( after " + fn)
				}
				p.pos++
				a, err := p.operand()
				if err != nil {
					return nil, err
				}
				if t := p.peek(); t == nil || t.kind != tokComma {
					return nil, p.errEnd(",")
				}
				p.pos++
				b, err := p.operand()
				if err != nil {
					return nil, err
				}
				if t := p.peek(); t == nil || t.kind != tokRParen {
					return nil, p.errEnd(")")
				}
				p.pos++
				return funcNode{name: fn, l: a, r: b}, nil
			}
		}
	}
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	op := p.peek()
	if op == nil || op.kind != tokOp {
		if lit, ok := l.(litNode); ok {
			if _, ok := lit.v.(bool); ok {
				return l, nil // true / false
			}
		}
		return nil, p.errEnd("a comparison operator")
	}
	p.pos++
	r, err := p.operand()
	if err != nil {
		return nil, err
	}
	return cmpNode{op: op.text, l: l, r: r}, nil
}

var attributes = []string{"type", "source", "subject", "id", "dataschema", "datacontenttype", "specversion", "time", "traceparent"}

func (p *parser) operand() (node, error) {
	t := p.peek()
	if t == nil {
		return nil, p.errEnd("a value")
	}
	p.pos++
	switch t.kind {
	case tokString:
		return litNode{t.text}, nil
	case tokNumber:
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%w: bad number %q at %d", ErrFilter, t.text, t.at)
		}
		return litNode{f}, nil
	case tokIdent:
		switch strings.ToLower(t.text) {
		case "true":
			return litNode{true}, nil
		case "false":
			return litNode{false}, nil
		case "null":
			return litNode{nil}, nil
		}
		if rest, ok := strings.CutPrefix(t.text, "$body."); ok {
			path := strings.Split(rest, ".")
			for _, s := range path {
				if s == "" {
					return nil, fmt.Errorf("%w: bad $body path %q at %d", ErrFilter, t.text, t.at)
				}
			}
			return bodyNode{path}, nil
		}
		for _, a := range attributes {
			if strings.EqualFold(t.text, a) {
				return attrNode{a}, nil
			}
		}
		return nil, fmt.Errorf("%w: unknown attribute %q at %d", ErrFilter, t.text, t.at)
	}
	return nil, fmt.Errorf("%w: unexpected %q at %d", ErrFilter, t.text, t.at)
}
