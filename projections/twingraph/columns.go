package twingraph

import (
	"iter"
	"math"
	"slices"
	"sync"

	"github.com/twinlog/twinlog/engine/jsonnum"
)

// PropNumber returns the number a property holds, parsed from its stored
// JSON; ok is false when it holds anything else.
func PropNumber(p *Prop) (v float64, ok bool) {
	if len(p.Value) == 0 {
		return 0, false
	}
	if c := p.Value[0]; c != '-' && (c < '0' || c > '9') {
		return 0, false
	}
	return jsonnum.ParseFloat(p.Value)
}

// NumberColumns caches, for the leaves of the twins' id tree, their twins'
// models and the numbers one root property holds, so that a scan filtering
// a model's twins on a numeric property (IS_OF_MODEL(Room) AND
// T.temperature > 75) reads compact arrays rather than each twin and its
// properties, a handful of cache misses per twin on a large graph. The
// columns of the leaves under one inner node are also kept together, so
// that a scan reads one array per inner node. A published node never
// changes (a change to any twin below it makes a new one), so an entry is
// right for as long as its node exists; entries that no scan has read for a
// while are dropped. A NumberColumns serves snapshots of one graph and is
// safe for concurrent use.
type NumberColumns struct {
	mu struct {
		sync.Mutex
		props  map[string]*propColumns
		scans  uint64 // scans started
		shares map[string]modelShare
	}
}

// modelShare records whether a model holds a sixteenth of the twins in
// the model index with root root (which changes whenever a twin is
// created, deleted or changes model).
type modelShare struct {
	root *bnode[modelKey, struct{}]
	ok   bool
}

// columnSweep is how many scans an entry survives unread.
const columnSweep = 16

// propColumns are the columns of one property, by leaf and by the inner
// node above the leaves (or a root that is a leaf).
type propColumns struct {
	leaves map[*bnode[string, *Twin]]*numberColumn
	groups map[*bnode[string, *Twin]]*groupColumn
}

// numberColumn is the twins of one leaf in id order: their models and the
// numbers of one property.
type numberColumn struct {
	seen   uint64    // the last scan that read it
	models []string  // the distinct models of the twins
	model  []uint16  // per twin, the index of its model in models
	nums   []float64 // per twin, the property's number; NaN when it holds none
}

// groupColumn is the twins of the leaves under one inner node that hold a
// number in the property, by model, each model's in id order: a scan reads
// only its model's arrays.
type groupColumn struct {
	seen   uint64      // the last scan that read it
	models []string    // the distinct models of those twins
	nums   [][]float64 // per model, the numbers
	at     [][]uint16  // per model, each number's twin's position in the group
	ends   []int       // the end of each leaf's positions
}

// CmpOp is the comparison of a NumberCmp.
type CmpOp uint8

// The comparisons of a scan.
const (
	Less CmpOp = iota + 1
	LessEq
	Greater
	GreaterEq
)

// NumberCmp keeps the numbers v for which v Op C holds; NaN is never kept.
type NumberCmp struct {
	Op CmpOp
	C  float64
}

// next returns the index of the first number of nums at or after j that c
// keeps, len(nums) when none: one loop per comparison, with no call per
// number.
func (c NumberCmp) next(nums []float64, j int) int {
	x := c.C
	switch c.Op {
	case Less:
		for ; j < len(nums) && !(nums[j] < x); j++ {
		}
	case LessEq:
		for ; j < len(nums) && !(nums[j] <= x); j++ {
		}
	case Greater:
		for ; j < len(nums) && !(nums[j] > x); j++ {
		}
	case GreaterEq:
		for ; j < len(nums) && !(nums[j] >= x); j++ {
		}
	default:
		j = len(nums)
	}
	return j
}

// NewNumberColumns returns an empty cache.
func NewNumberColumns() *NumberColumns {
	c := &NumberColumns{}
	c.mu.props = map[string]*propColumns{}
	c.mu.shares = map[string]modelShare{}
	return c
}

// Len returns the number of cached leaf columns.
func (c *NumberColumns) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, pc := range c.mu.props {
		n += len(pc.leaves)
	}
	return n
}

// Scan iterates, in id order, over the twins of s whose model is exactly
// model and whose root property prop holds a number cmp keeps: the twins
// and order of TwinsOfModel(model, true) filtered on that number. It reads
// the columns of every inner node above the id tree's leaves, so it pays
// off for a model holding a good share of the twins (see Worth).
func (c *NumberColumns) Scan(s *Snapshot, model, prop string, cmp NumberCmp) iter.Seq[*Twin] {
	return func(yield func(*Twin) bool) {
		c.mu.Lock()
		c.mu.scans++
		scan := c.mu.scans
		pc := c.mu.props[prop]
		if pc == nil {
			pc = &propColumns{leaves: map[*bnode[string, *Twin]]*numberColumn{}, groups: map[*bnode[string, *Twin]]*groupColumn{}}
			c.mu.props[prop] = pc
		}
		if scan%columnSweep == 0 {
			for k, col := range pc.leaves {
				if col.seen+columnSweep < scan {
					delete(pc.leaves, k)
				}
			}
			for k, col := range pc.groups {
				if col.seen+columnSweep < scan {
					delete(pc.groups, k)
				}
			}
		}
		c.mu.Unlock()
		s.twins.byID.eachGroup(func(x *bnode[string, *Twin]) bool {
			col := c.group(pc, x, prop, scan)
			mi := slices.Index(col.models, model)
			if mi < 0 {
				return true
			}
			at, nums := col.at[mi], col.nums[mi]
			var leaves []*bnode[string, *Twin] // read only for a kept number
			k, start := 0, 0
			for j := cmp.next(nums, 0); j < len(nums); j = cmp.next(nums, j+1) {
				i := int(at[j])
				for i >= col.ends[k] {
					start = col.ends[k]
					k++
				}
				if leaves == nil {
					leaves = groupLeaves(x)
				}
				if !yield(leaves[k].vals[i-start]) {
					return false
				}
			}
			return true
		})
	}
}

// group returns the column of the leaves under x, building it from the
// leaves' columns when missing.
func (c *NumberColumns) group(pc *propColumns, x *bnode[string, *Twin], prop string, scan uint64) *groupColumn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if col := pc.groups[x]; col != nil {
		col.seen = scan
		return col
	}
	leaves := groupLeaves(x)
	g := &groupColumn{seen: scan, ends: make([]int, 0, len(leaves))}
	n := 0
	for _, leaf := range leaves {
		lc := pc.leaves[leaf]
		if lc == nil {
			lc = leafColumn(leaf, prop)
			pc.leaves[leaf] = lc
		}
		lc.seen = scan
		for i, v := range lc.nums {
			if !math.IsNaN(v) {
				m := lc.models[lc.model[i]]
				mi := slices.Index(g.models, m)
				if mi < 0 {
					mi = len(g.models)
					g.models = append(g.models, m)
					g.nums = append(g.nums, nil)
					g.at = append(g.at, nil)
				}
				g.nums[mi] = append(g.nums[mi], v)
				g.at[mi] = append(g.at[mi], uint16(n+i)) // a group holds at most (bmax+1)^2 twins
			}
		}
		n += len(lc.nums)
		g.ends = append(g.ends, n)
	}
	pc.groups[x] = g
	return g
}

// leafColumn reads the column of prop of one leaf's twins.
func leafColumn(leaf *bnode[string, *Twin], prop string) *numberColumn {
	col := &numberColumn{model: make([]uint16, len(leaf.vals)), nums: make([]float64, len(leaf.vals))}
	for i, t := range leaf.vals {
		mi := slices.Index(col.models, t.Model)
		if mi < 0 {
			mi = len(col.models)
			col.models = append(col.models, t.Model)
		}
		col.model[i] = uint16(mi)
		col.nums[i] = math.NaN()
		if p, ok := t.Prop(prop); ok {
			if v, ok := PropNumber(p); ok {
				col.nums[i] = v
			}
		}
	}
	return col
}

// Worth reports whether Scan pays off for model on s: whether model holds
// at least a sixteenth of the twins. The answer is kept until twins are
// created, deleted or change model.
func (c *NumberColumns) Worth(s *Snapshot, model string) bool {
	root := s.twins.byModel.root
	c.mu.Lock()
	sh, ok := c.mu.shares[model]
	c.mu.Unlock()
	if ok && sh.root == root {
		return sh.ok
	}
	sh = modelShare{root: root, ok: s.hasAtLeast(model, s.twins.byID.Len()/16)}
	c.mu.Lock()
	if len(c.mu.shares) >= 1024 {
		clear(c.mu.shares)
	}
	c.mu.shares[model] = sh
	c.mu.Unlock()
	return sh.ok
}

// TwinCount returns the number of twins.
func (s *Snapshot) TwinCount() int { return s.twins.byID.Len() }

// hasAtLeast reports whether at least n twins have exactly model.
func (s *Snapshot) hasAtLeast(model string, n int) bool {
	if n <= 0 {
		return true
	}
	count := 0
	s.twins.byModel.Ascend(modelKey{model: model}, false, func(k modelKey, _ struct{}) bool {
		if k.model != model {
			return false
		}
		count++
		return count < n
	})
	return count >= n
}

// groupLeaves returns the leaves of a group of eachGroup.
func groupLeaves[K, V any](x *bnode[K, V]) []*bnode[K, V] {
	if x.kids == nil {
		return []*bnode[K, V]{x}
	}
	return x.kids
}

// eachGroup calls yield with each node directly above leaves, in key order
// until yield returns false; a root that is a leaf is its own group (see
// groupLeaves). It reads neither the leaves nor the groups themselves: a
// caller with what it needs of a group cached by the group's identity
// spends no cache miss on it.
func (t btree[K, V]) eachGroup(yield func(x *bnode[K, V]) bool) {
	if t.root == nil {
		return
	}
	if t.root.kids == nil {
		yield(t.root)
		return
	}
	// Every leaf is at the same depth: the nodes above the leaves are those
	// at depth-1, found without reading a leaf (on a large tree, reading
	// each group's first leaf only to learn it is one cost a cache miss
	// per group).
	depth := 0
	for x := t.root; x.kids != nil; x = x.kids[0] {
		depth++
	}
	t.root.eachGroup(depth-1, yield)
}

// eachGroup yields the nodes at level below x (0: x itself).
func (x *bnode[K, V]) eachGroup(level int, yield func(x *bnode[K, V]) bool) bool {
	if level == 0 {
		return yield(x)
	}
	for _, c := range x.kids {
		if !c.eachGroup(level-1, yield) {
			return false
		}
	}
	return true
}
