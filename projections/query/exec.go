package query

import (
	"context"
	"errors"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/twinlog/twinlog/engine"
)

// exec runs a plan over a graph, calling emit for each row that passes.
type exec struct {
	ctx      context.Context
	deadline time.Time
	g        Graph
	pl       *Plan
	args     []any // the values of a reused plan's string literals
	row      row
	work     int
	mem      int64
	maxMem   int64
	err      error
	stopped  bool
	visible  func(Twin) bool // Options.Visible
	emit     func(*row) bool // run's row callback
	filt     evalFn          // the access path's condition, when the graph does not apply it
	// seekers look up the twins each step reaches, when the graph is a
	// SeekingGraph (made on first use).
	sg      SeekingGraph
	seekers []Seeker
	// Room for the row's slots and a reused plan's id, so that a small
	// query allocates none of them.
	twinBuf [4]Twin
	relBuf  [2]Relationship
	idBuf   [1]string
	stream1 streamState
	// prefetched sums what Prefetch returned, so that its loads are used.
	prefetched uint
}

// execPool recycles execs: a query's own state is then no garbage.
var execPool = sync.Pool{New: func() any { return new(exec) }}

// free recycles x once its run is over, keeping the room it grew but no
// reference to the query, its graph or its rows.
func (x *exec) free() {
	x.releaseSeekers()
	seekers, buf := x.seekers[:0], x.stream1.buf[:0]
	if cap(buf) > maxChunk {
		buf = nil
	}
	*x = exec{}
	x.seekers, x.stream1.buf = seekers, buf
	execPool.Put(x)
}

// releaseSeekers hands back the seekers that can be recycled and clears
// them.
func (x *exec) releaseSeekers() {
	for i, k := range x.seekers {
		if r, ok := k.(interface{ Release() }); ok {
			r.Release()
		}
		x.seekers[i] = nil
	}
}

// twin returns the twin id when it exists and is visible.
func (x *exec) twin(id string) (Twin, bool) {
	return x.shown(x.g.Twin(id))
}

// shown passes on a twin found (ok) when it is visible.
func (x *exec) shown(t Twin, ok bool) (Twin, bool) {
	if ok && x.visible != nil && !x.visible(t) {
		return nil, false
	}
	return t, ok
}

// stepTwin returns the twin id, reached by step i, when it exists and is
// visible.
func (x *exec) stepTwin(i int, id string) (Twin, bool) {
	if x.sg == nil {
		return x.twin(id)
	}
	return x.shown(x.seeker(i).Twin(id))
}

// follower is a Seeker's optional shortcut from a relationship to a twin
// at one of its ends (see Seeker).
type follower interface {
	Follow(r Relationship, id string) (Twin, bool)
}

// seeker returns the seeker of step i. x.seekers must be set.
func (x *exec) seeker(i int) Seeker {
	k := x.seekers[i]
	if k == nil {
		k = x.sg.Seeker()
		x.seekers[i] = k
	}
	return k
}

// relVisible reports whether both ends of r are visible.
func (x *exec) relVisible(r Relationship) bool {
	if x.visible == nil {
		return true
	}
	_, ok := x.twin(r.Source())
	if ok {
		_, ok = x.twin(r.Target())
	}
	return ok
}

// checkEvery is how many visited twins and relationships pass between
// checks of the context.
const checkEvery = 1024

// tick counts one unit of work and reports whether to go on.
func (x *exec) tick() bool {
	x.work++
	if x.work%checkEvery == 0 {
		if err := x.ctx.Err(); err != nil {
			x.err = budgetError(err)
			return false
		}
		if time.Now().After(x.deadline) {
			x.err = budgetError(context.DeadlineExceeded)
			return false
		}
	}
	return true
}

func budgetError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &engine.Error{Kind: engine.KindTimeout, Code: CodeTimeout, Message: "the query ran out of time; narrow it with $dtId or IS_OF_MODEL, or page with a smaller max-items-per-page", Err: err}
	}
	return &engine.Error{Kind: engine.KindTimeout, Code: CodeTimeout, Message: "the query was cancelled", Err: err}
}

// charge counts bytes held by materialized rows against the budget.
func (x *exec) charge(n int) bool {
	x.mem += int64(n)
	if x.maxMem > 0 && x.mem > x.maxMem {
		x.err = engine.Errorf(engine.KindTooLarge, CodeTooLarge, "the query needs more than %d MiB to sort, group or de-duplicate its rows; filter it further or drop ORDER BY, GROUP BY or DISTINCT", x.maxMem>>20)
		return false
	}
	return true
}

func passes(fs []evalFn, r *row) bool {
	for _, f := range fs {
		if b, ok := f(r).(bool); !ok || !b {
			return false
		}
	}
	return true
}

// run calls emit for every row in plan order until emit returns false.
func (x *exec) run(emit func(*row) bool) error {
	pl := x.pl
	x.row = row{twins: x.twinBuf[:0], rels: x.relBuf[:0], args: x.args}
	x.row.twins = append(x.row.twins, make([]Twin, len(pl.twinNames))...)
	x.row.rels = append(x.row.rels, make([]Relationship, len(pl.relNames))...)
	x.releaseSeekers()
	x.sg = nil
	if sg, ok := x.g.(SeekingGraph); ok && len(pl.steps) > 0 {
		x.sg, x.seekers = sg, slices.Grow(x.seekers[:0], len(pl.steps))[:len(pl.steps)]
	}
	x.emit = emit
	if !passes(pl.constFilt, &x.row) {
		return nil
	}
	if pl.rels {
		x.scanRels(func(r Relationship) bool {
			if !x.tick() {
				return false
			}
			if !x.relVisible(r) {
				return true
			}
			x.row.rels[0] = r
			if !passes(pl.anchorFilt, &x.row) {
				return true
			}
			return emit(&x.row)
		})
		return x.err
	}
	visit := x.visit
	switch pl.access.kind {
	case lookupIDs:
		lookup := x.g.Twin
		if x.sg != nil {
			// The first step's seeker looks the anchors up: ids often
			// extend the id of the twin they hang off (building-1-floor-2,
			// building-1-floor-2-room-3), and the step's first lookup then
			// starts next to its anchor instead of from the root.
			lookup = x.seeker(0).Twin
		}
		for _, id := range x.ids() {
			if t, ok := lookup(id); ok && !visit(t) {
				break
			}
		}
	case scanModels:
		ns, _ := x.g.(NumberScanner)
	models:
		for _, m := range pl.access.models {
			twins := x.g.TwinsOfModel(m)
			x.filt = pl.access.filt
			if ns != nil && x.filt != nil {
				if ts, ok := ns.TwinsOfModelWhere(m, pl.access.prop, pl.access.test); ok {
					twins, x.filt = ts, nil
				}
			}
			for t := range twins {
				if !visit(t) {
					break models
				}
			}
		}
	default:
		for t := range x.g.Twins() {
			if !visit(t) {
				break
			}
		}
	}
	return x.err
}

// visit binds the anchor t and expands from it.
func (x *exec) visit(t Twin) bool {
	if !x.tick() {
		return false
	}
	if x.visible != nil && !x.visible(t) {
		return true
	}
	x.row.twins[x.pl.anchor] = t
	if x.filt != nil {
		if b, ok := x.filt(&x.row).(bool); !ok || !b {
			return true
		}
	}
	if !passes(x.pl.anchorFilt, &x.row) {
		return true
	}
	return x.expand(0, x.emit)
}

// ids returns the ids of the access path, read from the run's arguments
// when the plan was made for reuse.
func (x *exec) ids() []string {
	if a := x.pl.access.idArg; a > 0 {
		x.idBuf[0] = x.args[a-1].(string)
		return x.idBuf[:]
	}
	return x.pl.access.ids
}

func (x *exec) scanRels(f func(Relationship) bool) {
	switch x.pl.access.kind {
	case relsBySource:
		for _, id := range x.ids() {
			for r := range x.g.Outgoing(id, "") {
				if !f(r) {
					return
				}
			}
		}
	case relsByTarget:
		for _, id := range x.ids() {
			for r := range x.g.Incoming(id) {
				if !f(r) {
					return
				}
			}
		}
	default:
		if rs, ok := x.g.(RelationshipScanner); ok {
			for r := range rs.Relationships() {
				if !f(r) {
					return
				}
			}
			return
		}
		for t := range x.g.Twins() {
			for r := range x.g.Outgoing(t.ID(), "") {
				if !f(r) {
					return
				}
			}
		}
	}
}

// neighbors calls f with each relationship of t (or, when t is nil, of
// the twin id) that step s follows and the id of the twin at its other end.
func (x *exec) neighbors(s *step, t Twin, id string, f func(Relationship, string) bool) bool {
	name := ""
	if len(s.names) == 1 {
		name = s.names[0]
	}
	adj, _ := t.(Adjacency)
	if s.dir != Left {
		var out iter.Seq[Relationship]
		if adj != nil {
			out = adj.Outgoing(name)
		} else {
			out = x.g.Outgoing(id, name)
		}
		for r := range out {
			if !x.tick() {
				return false
			}
			if s.follows(r) && !f(r, r.Target()) {
				return false
			}
		}
	}
	if s.dir != Right {
		var in iter.Seq[Relationship]
		if adj != nil {
			in = adj.Incoming()
		} else {
			in = x.g.Incoming(id)
		}
		for r := range in {
			if !x.tick() {
				return false
			}
			if name != "" && r.Name() != name || !s.follows(r) {
				continue
			}
			if s.dir == Both && r.Source() == r.Target() {
				continue // a self-loop was already followed as outgoing
			}
			if !f(r, r.Source()) {
				return false
			}
		}
	}
	return true
}

// follows reports whether step s follows r by its name, when s names
// several (one name is passed to the graph).
func (s *step) follows(r Relationship) bool {
	return len(s.names) <= 1 || slices.Contains(s.names, r.Name())
}

// expand binds the twins of steps[i:] and emits complete rows.
func (x *exec) expand(i int, emit func(*row) bool) bool {
	pl := x.pl
	if i == len(pl.steps) {
		return emit(&x.row)
	}
	s := &pl.steps[i]
	from := x.row.twins[s.from]
	if s.max == 1 {
		return x.expandHop(i, emit)
	}
	// Variable length: every twin reached by a path of min..max hops that
	// visits no twin twice, each once.
	seen := map[string]bool{}
	path := []string{from.ID()}
	var walk func(id string, depth int) bool
	walk = func(id string, depth int) bool {
		return x.neighbors(s, nil, id, func(_ Relationship, other string) bool {
			if slices.Contains(path, other) {
				return true
			}
			if x.visible != nil {
				// A path does not pass through a twin the caller may
				// not read: that would reveal what it connects.
				if _, ok := x.twin(other); !ok {
					return true
				}
			}
			if depth+1 >= s.min && !seen[other] {
				seen[other] = true
				if t, ok := x.g.Twin(other); ok {
					x.row.twins[s.to] = t
					if passes(s.filters, &x.row) && !x.expand(i+1, emit) {
						return false
					}
				}
			}
			if depth+1 < s.max {
				path = append(path, other)
				ok := walk(other, depth+1)
				path = path[:len(path)-1]
				return ok
			}
			return true
		})
	}
	return walk(from.ID(), 0)
}

// hopChunk is how many relationships of a single-hop step expandHop binds
// at a time.
const hopChunk = 32

// hop is a relationship a step follows, the id of the twin at its other
// end, and that twin once looked up.
type hop struct {
	r  Relationship
	id string
	t  Twin
}

// hopBuf holds a chunk of hops and how many are filled.
type hopBuf struct {
	hops [hopChunk]hop
	n    int
}

var hopBufs = sync.Pool{New: func() any { return new(hopBuf) }}

// expandHop binds the twins of single-hop step i and expands each, a chunk
// of the step's relationships at a time: it looks the chunk's twins up,
// and when they are Prefetchers reads their memory in one tight loop,
// before binding them one by one. Reading one twin then does not wait for
// the one before it, so their cache misses overlap where binding each in
// turn stalls on every one of them (a twin's properties are scattered
// over a large heap).
func (x *exec) expandHop(i int, emit func(*row) bool) bool {
	s := &x.pl.steps[i]
	from := x.row.twins[s.from]
	buf := hopBufs.Get().(*hopBuf)
	ok := x.neighbors(s, from, from.ID(), func(r Relationship, other string) bool {
		buf.hops[buf.n] = hop{r: r, id: other}
		if buf.n++; buf.n < hopChunk {
			return true
		}
		buf.n = 0
		return x.bindHops(i, buf.hops[:], emit)
	})
	if ok {
		ok = x.bindHops(i, buf.hops[:buf.n], emit)
	}
	*buf = hopBuf{}
	hopBufs.Put(buf)
	return ok
}

// bindHops looks up the twins of hops, reached by step i, and expands from
// each one that exists, is visible and passes the step's filters.
func (x *exec) bindHops(i int, hops []hop, emit func(*row) bool) bool {
	s := &x.pl.steps[i]
	n := 0
	var follow follower
	if x.sg != nil {
		follow, _ = x.seeker(i).(follower)
	}
	for _, h := range hops {
		var t Twin
		var ok bool
		if follow != nil {
			t, ok = x.shown(follow.Follow(h.r, h.id))
		} else {
			t, ok = x.stepTwin(i, h.id)
		}
		if ok {
			h.t = t
			hops[n] = h
			n++
		}
	}
	hops = hops[:n]
	if n > 1 {
		for _, h := range hops {
			if p, ok := h.t.(Prefetcher); ok {
				x.prefetched += p.Prefetch()
			}
		}
	}
	for _, h := range hops {
		x.row.twins[s.to] = h.t
		if s.rel >= 0 {
			x.row.rels[s.rel] = h.r
		}
		if !passes(s.filters, &x.row) {
			continue
		}
		if !x.expand(i+1, emit) {
			return false
		}
	}
	return true
}

// encode appends the JSON of one output row.
func (x *exec) encode(dst []byte, r *row) []byte {
	pl := x.pl
	switch pl.mode {
	case outStar:
		if pl.rels {
			return r.rels[0].AppendJSON(dst)
		}
		return r.twins[0].AppendJSON(dst)
	case outStarMulti:
		dst = append(dst, '{')
		n := 0
		for i, name := range pl.twinNames {
			if n > 0 {
				dst = append(dst, ',')
			}
			n++
			dst = appendString(dst, name)
			dst = append(dst, ':')
			dst = r.twins[i].AppendJSON(dst)
		}
		for i, name := range pl.relNames {
			dst = append(dst, ',')
			dst = appendString(dst, name)
			dst = append(dst, ':')
			dst = r.rels[i].AppendJSON(dst)
		}
		return append(dst, '}')
	}
	dst = append(dst, '{')
	n := 0
	for _, c := range pl.cols {
		if c.str != nil {
			if n > 0 {
				dst = append(dst, ',')
			}
			n++
			dst = appendString(dst, c.name)
			dst = append(dst, ':')
			dst = appendString(dst, c.str(r))
			continue
		}
		v := c.eval(r)
		if isMissing(v) {
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = appendString(dst, c.name)
		dst = append(dst, ':')
		dst = appendValue(dst, v)
	}
	return append(dst, '}')
}
