package query

import (
	"context"
	"strings"
	"sync"
	"unicode/utf8"
)

// ModelsVersioner is an optional capability of a Graph: a number that
// changes whenever the graph's models change. Plans resolve IS_OF_MODEL
// against the models, so a Cache reuses a plan only on graphs whose models
// version is the one it was planned on, and only caches over graphs that
// have one.
type ModelsVersioner interface {
	ModelsVersion() uint64
}

// DefaultCacheSize is the number of query shapes a Cache holds when
// NewCache is given 0.
const DefaultCacheSize = 1024

// maxVariants bounds the plans kept for one shape: plans that depend on the
// values of some of its literals (IS_OF_MODEL's model, long IN lists).
const maxVariants = 4

// Cache keeps planned statements for reuse, keyed by their query text with
// the bodies of string literals taken out, so that the queries an
// application sends again and again with other ids ("... WHERE T.$dtId =
// '<id>'") are parsed and planned once. Number literals stay part of the
// key. A run of a cached plan binds the text's string literals to the plan
// in text order; a plan that depends on the value of a literal (the model of
// IS_OF_MODEL, the values of an IN list) is reused only for that same value.
// Texts the key scanner does not handle (comments, [[escaped]] names,
// escapes in strings, non-ASCII outside strings), statements with EXPLAIN,
// AS OF or GROUP BY, queries with parameters and graphs without a models
// version are planned each time. A Cache is safe for concurrent use.
type Cache struct {
	size int
	mu   struct {
		sync.RWMutex
		shapes map[string]*shapePlans
	}
}

// shapePlans are the plans of one query shape on one models version,
// newest first.
type shapePlans struct {
	models uint64
	plans  []*reusablePlan
}

// reusablePlan is a plan made for reuse with other literal values.
type reusablePlan struct {
	pl   *Plan
	nlit int
	// pinned are the literals (1-based) the plan depends on, and vals
	// their values.
	pinned []int
	vals   []string
}

func (r *reusablePlan) fits(lits []string) bool {
	if len(lits) != r.nlit {
		return false
	}
	for i, a := range r.pinned {
		if lits[a-1] != r.vals[i] {
			return false
		}
	}
	return true
}

// NewCache returns a cache of at most size query shapes (DefaultCacheSize
// when size <= 0).
func NewCache(size int) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	c := &Cache{size: size}
	c.mu.shapes = map[string]*shapePlans{}
	return c
}

// Len returns the number of query shapes held.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.mu.shapes)
}

// Run is Run with parsing and planning skipped when c holds a plan of
// text's shape; it returns the same results. A nil Cache runs text as Run
// does.
func (c *Cache) Run(ctx context.Context, g Graph, text string, opts Options) (*Result, error) {
	mv, ok := g.(ModelsVersioner)
	if c == nil || !ok || len(opts.Params) > 0 {
		return Run(ctx, g, text, opts)
	}
	var keyBuf [256]byte
	var litBuf [8]string
	key, lits, ok := shape(text, keyBuf[:0], litBuf[:0])
	if !ok {
		return Run(ctx, g, text, opts)
	}
	models := mv.ModelsVersion()
	pl := c.lookup(key, models, lits)
	if pl == nil {
		st, err := Parse(text)
		if err != nil {
			return nil, err
		}
		if !reusable(st) {
			res, err := RunStatement(ctx, g, st, opts)
			return withToken(res, err, g, text, opts)
		}
		p := &planner{g: g, stmt: st, pl: &Plan{stmt: st}, reuse: true}
		if pl, err = p.plan(false); err != nil {
			return nil, err
		}
		if boundInOrder(st, lits) {
			c.store(string(key), models, p, lits)
		}
	}
	args := make([]any, len(lits))
	for i, s := range lits {
		args[i] = s
	}
	res, err := runPlan(ctx, g, pl, args, opts)
	return withToken(res, err, g, text, opts)
}

func (c *Cache) lookup(key []byte, models uint64, lits []string) *Plan {
	c.mu.RLock()
	defer c.mu.RUnlock()
	sp := c.mu.shapes[string(key)]
	if sp == nil || sp.models != models {
		return nil
	}
	for _, r := range sp.plans {
		if r.fits(lits) {
			return r.pl
		}
	}
	return nil
}

func (c *Cache) store(key string, models uint64, p *planner, lits []string) {
	r := &reusablePlan{pl: p.pl, nlit: len(lits), pinned: p.pinned}
	for _, a := range p.pinned {
		r.vals = append(r.vals, lits[a-1])
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sp := c.mu.shapes[key]
	if sp == nil || sp.models != models {
		if sp == nil && len(c.mu.shapes) >= c.size {
			for k := range c.mu.shapes { // drop one shape, any
				delete(c.mu.shapes, k)
				break
			}
		}
		sp = &shapePlans{models: models}
		c.mu.shapes[key] = sp
	}
	plans := make([]*reusablePlan, 0, maxVariants)
	plans = append(plans, r)
	for _, o := range sp.plans {
		if len(plans) < maxVariants && !samePins(o, r) {
			plans = append(plans, o)
		}
	}
	sp.plans = plans
}

func samePins(a, b *reusablePlan) bool {
	if len(a.pinned) != len(b.pinned) || a.nlit != b.nlit {
		return false
	}
	for i := range a.pinned {
		if a.pinned[i] != b.pinned[i] || a.vals[i] != b.vals[i] {
			return false
		}
	}
	return true
}

// reusable reports whether a plan of st may serve other values of its
// string literals. GROUP BY matches select items to groups by their text,
// literals included, so a grouped plan holds for its own values only.
func reusable(st *Statement) bool {
	return !st.Explain && st.AsOf == nil && len(st.GroupBy) == 0
}

// boundInOrder reports whether st's string literals are exactly lits, the
// string literals the key scanner found, numbered in the same order: the
// condition for binding another text of the same shape to st's plan.
func boundInOrder(st *Statement, lits []string) bool {
	seen := make([]bool, len(lits))
	ok := true
	n := 0
	visit := func(l *Literal) {
		if l.arg == 0 {
			return
		}
		if l.arg > len(lits) || l.Value != any(lits[l.arg-1]) {
			ok = false
			return
		}
		if !seen[l.arg-1] {
			seen[l.arg-1] = true
			n++
		}
	}
	for _, it := range st.Items {
		eachLiteral(it.Expr, visit)
	}
	eachLiteral(st.Where, visit)
	for _, o := range st.OrderBy {
		eachLiteral(o.Expr, visit)
	}
	return ok && n == len(lits)
}

// eachLiteral calls f with every literal of e.
func eachLiteral(e Expr, f func(*Literal)) {
	switch x := e.(type) {
	case *Literal:
		f(x)
	case *Unary:
		eachLiteral(x.X, f)
	case *Binary:
		eachLiteral(x.X, f)
		eachLiteral(x.Y, f)
	case *In:
		eachLiteral(x.X, f)
		eachLiteral(x.Set, f)
	case *Call:
		for _, a := range x.Args {
			eachLiteral(a, f)
		}
	case *Array:
		for _, y := range x.Elems {
			eachLiteral(y, f)
		}
	}
}

// shape appends to key the cache key of text, text without the bodies of
// its string literals, and to lits the bodies in order. ok is false for a
// text it does not handle: one with a comment, an [[escaped]] name (either
// may hold a quote), a string with an escape, a line break or invalid
// UTF-8, an unclosed string, or non-ASCII outside strings. Two texts with
// the same key lex to the same tokens but for the values of their string
// literals.
func shape(text string, key []byte, lits []string) ([]byte, []string, bool) {
	if len(text) > MaxQueryLength {
		return nil, nil, false
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '\'' || c == '"':
			n := strings.IndexByte(text[i+1:], c)
			if n < 0 {
				return nil, nil, false
			}
			body := text[i+1 : i+1+n]
			if strings.IndexByte(body, '\\') >= 0 || strings.IndexByte(body, '\n') >= 0 || !utf8.ValidString(body) {
				return nil, nil, false
			}
			key = append(key, c, c)
			lits = append(lits, body)
			i += n + 1
			continue
		case c >= utf8.RuneSelf:
			return nil, nil, false
		case i+1 < len(text):
			switch text[i : i+2] {
			case "--", "/*", "[[":
				return nil, nil, false
			}
		}
		key = append(key, c)
	}
	return key, lits, true
}
