package twingraph

import (
	"sync/atomic"
)

// btree is a persistent (copy-on-write) B+tree mapping keys to values in
// key order. A committed tree is immutable and safe for any number of
// readers; a write transaction (btxn) copies the nodes on the path it
// changes, once per transaction, and changes the copies in place until it
// commits. Unlike go-immutable-radix it keeps no per-node channels and
// stores keys as they are (the twins' own id strings), so a twin costs
// about one key and one pointer per tree.
//
// Nodes share their keys array with the node they were copied from until
// the keys themselves change: replacing a value copies only the values
// (or children) array, so a patch copies a few hundred bytes per level.
type btree[K, V any] struct {
	root *bnode[K, V]
	n    int
	cmp  func(a, b K) int
}

// bnode is a leaf (kids == nil) holding keys and vals, or an inner node
// whose kids[i] holds the keys in [keys[i], keys[i+1]); keys[0] of an inner
// node is a lower bound of its subtree, not used for searching.
type bnode[K, V any] struct {
	gen     uint64 // the transaction that may change it in place
	ownKeys bool   // keys is not shared with another node
	keys    []K
	vals    []V
	kids    []*bnode[K, V]
}

// bmax is the most entries a node holds before it splits. Small pages keep
// the copy a write makes small; 32 keeps the tree 4-5 levels deep for
// millions of twins.
const bmax = 32

var btreeGen atomic.Uint64

func newBtree[K, V any](cmp func(a, b K) int) btree[K, V] {
	return btree[K, V]{cmp: cmp}
}

// Len returns the number of keys.
func (t btree[K, V]) Len() int { return t.n }

// search returns the index of the first key >= k in keys, and whether it
// equals k.
func search[K any](keys []K, k K, cmp func(a, b K) int) (int, bool) {
	lo, hi := 0, len(keys)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if cmp(keys[m], k) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(keys) && cmp(keys[lo], k) == 0
}

// child returns the index of the kid of inner node x whose range holds k.
func (x *bnode[K, V]) child(k K, cmp func(a, b K) int) int {
	// The last i >= 1 with keys[i] <= k, else 0.
	lo, hi := 1, len(x.keys)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if cmp(x.keys[m], k) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

// Get returns the value of k.
func (t btree[K, V]) Get(k K) (V, bool) {
	x := t.root
	if x == nil {
		var zero V
		return zero, false
	}
	for x.kids != nil {
		x = x.kids[x.child(k, t.cmp)]
	}
	i, ok := search(x.keys, k, t.cmp)
	if !ok {
		var zero V
		return zero, false
	}
	return x.vals[i], true
}

// getStr is Get for a tree of string keys ordered by strings.Compare (the
// twins by id), with the comparisons inlined rather than called through
// cmp: the lookup a write, a telemetry point and a read each make.
func getStr[V any](t btree[string, V], k string) (V, bool) {
	x := t.root
	if x == nil {
		var zero V
		return zero, false
	}
	for x.kids != nil {
		// The last i >= 1 with keys[i] <= k, else 0 (see child).
		lo, hi := 1, len(x.keys)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if x.keys[m] <= k {
				lo = m + 1
			} else {
				hi = m
			}
		}
		x = x.kids[lo-1]
	}
	lo, hi := 0, len(x.keys)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x.keys[m] < k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(x.keys) && x.keys[lo] == k {
		return x.vals[lo], true
	}
	var zero V
	return zero, false
}

// seeker looks up keys of one tree in ascending order, cheaply when they
// are close together (the twins of a model, looked up by id in id order).
// A key within the leaf of the last lookup costs one compare with the
// leaf's last key and equality tests from the last position on; a key
// beyond it starts from the lowest node of the last path whose range holds
// it, not from the root.
type seeker[K, V any] struct {
	t     btree[K, V]
	eq    func(a, b K) bool
	nodes []*bnode[K, V] // the last path: nodes[0] is the root, the last a leaf
	idx   []int          // idx[l] is the kid of inner node nodes[l] taken
	pos   int            // the last key's index in the leaf
}

// seeker returns a seeker over t; eq must agree with t's cmp (a == b for
// strings, which is cheaper than a compare when a and b differ in length
// or share their bytes).
func (t btree[K, V]) seeker(eq func(a, b K) bool) *seeker[K, V] { return &seeker[K, V]{t: t, eq: eq} }

// strEq is the seeker equality of string keys.
func strEq(a, b string) bool { return a == b }

// get returns the value of k, which must be >= every key looked up
// before.
func (s *seeker[K, V]) get(k K) (V, bool) {
	var zero V
	if s.t.root == nil {
		return zero, false
	}
	if n := len(s.nodes); n > 0 {
		leaf := s.nodes[n-1]
		if last := len(leaf.keys) - 1; last >= 0 && s.t.cmp(k, leaf.keys[last]) <= 0 {
			for i := s.pos; i <= last; i++ {
				if s.eq(leaf.keys[i], k) {
					s.pos = i
					return leaf.vals[i], true
				}
			}
			return zero, false
		}
	}
	// The deepest inner level whose chosen kid's range holds k, or whose
	// next kid's does: kid i of node x covers [keys[i], keys[i+1]), and k
	// is not below keys[i] as it is not below the last key; the last kid's
	// upper bound is its parent's. Ascending lookups mostly move on to the
	// next leaf, which this finds from the parent with two compares.
	l := len(s.nodes) - 2
	for ; l >= 0; l-- {
		x, i := s.nodes[l], s.idx[l]
		if i+1 >= len(x.keys) {
			continue
		}
		if s.t.cmp(k, x.keys[i+1]) < 0 {
			break
		}
		if i+2 < len(x.keys) && s.t.cmp(k, x.keys[i+2]) < 0 {
			s.idx[l] = i + 1
			s.nodes[l+1] = x.kids[i+1]
			break
		}
	}
	var x *bnode[K, V]
	if l < 0 {
		x = s.t.root
		s.nodes, s.idx = append(s.nodes[:0], x), s.idx[:0]
	} else {
		x = s.nodes[l+1]
		s.nodes, s.idx = s.nodes[:l+2], s.idx[:l+1]
	}
	for x.kids != nil {
		i := x.child(k, s.t.cmp)
		x = x.kids[i]
		s.idx = append(s.idx, i)
		s.nodes = append(s.nodes, x)
	}
	i, ok := search(x.keys, k, s.t.cmp)
	s.pos = i
	if !ok {
		return zero, false
	}
	return x.vals[i], true
}

// Ascend calls yield for each key >= from (every key when all is set) in
// order, until yield returns false.
func (t btree[K, V]) Ascend(from K, all bool, yield func(K, V) bool) {
	if t.root != nil {
		t.root.ascend(from, all, t.cmp, yield)
	}
}

func (x *bnode[K, V]) ascend(from K, all bool, cmp func(a, b K) int, yield func(K, V) bool) bool {
	if x.kids == nil {
		i := 0
		if !all {
			i, _ = search(x.keys, from, cmp)
		}
		for ; i < len(x.keys); i++ {
			if !yield(x.keys[i], x.vals[i]) {
				return false
			}
		}
		return true
	}
	i := 0
	if !all {
		i = x.child(from, cmp)
	}
	if !x.kids[i].ascend(from, all, cmp, yield) {
		return false
	}
	for _, c := range x.kids[i+1:] {
		if !c.ascend(from, true, cmp, yield) {
			return false
		}
	}
	return true
}

// btxn is a write transaction on a btree. It must not be used after
// Commit.
type btxn[K, V any] struct {
	t   btree[K, V]
	gen uint64
}

// Txn starts a write transaction; t itself is not changed.
func (t btree[K, V]) Txn() *btxn[K, V] {
	return &btxn[K, V]{t: t, gen: btreeGen.Add(1)}
}

// Commit returns the tree as changed by the transaction.
func (tx *btxn[K, V]) Commit() btree[K, V] {
	t := tx.t
	tx.gen = 0
	return t
}

// Get returns the value of k as of the transaction.
func (tx *btxn[K, V]) Get(k K) (V, bool) { return tx.t.Get(k) }

// mut returns x, or a copy of it the transaction may change.
func (tx *btxn[K, V]) mut(x *bnode[K, V]) *bnode[K, V] {
	if x.gen == tx.gen {
		return x
	}
	n := &bnode[K, V]{gen: tx.gen, keys: x.keys}
	if x.kids != nil {
		n.kids = append(make([]*bnode[K, V], 0, len(x.kids)+1), x.kids...)
	} else {
		n.vals = append(make([]V, 0, len(x.vals)+1), x.vals...)
	}
	return n
}

// setKeys makes the keys of x (owned by the transaction) its own.
func (x *bnode[K, V]) setKeys() {
	if !x.ownKeys {
		x.keys = append(make([]K, 0, len(x.keys)+1), x.keys...)
		x.ownKeys = true
	}
}

// Put sets k to v and returns the previous value.
func (tx *btxn[K, V]) Put(k K, v V) (V, bool) {
	if tx.t.root == nil {
		tx.t.root = &bnode[K, V]{gen: tx.gen, ownKeys: true, keys: []K{k}, vals: []V{v}}
		tx.t.n = 1
		var zero V
		return zero, false
	}
	root := tx.mut(tx.t.root)
	old, replaced, right := tx.put(root, k, v)
	if right != nil {
		root = &bnode[K, V]{gen: tx.gen, ownKeys: true, keys: []K{root.keys[0], right.keys[0]}, kids: []*bnode[K, V]{root, right}}
	}
	tx.t.root = root
	if !replaced {
		tx.t.n++
	}
	return old, replaced
}

// slot returns where k's value is held, in a leaf the transaction owns
// (the path to it is copied as Put copies it), or nil when k is absent. It
// is one descent where Get then Put are two. The pointer is valid until the
// transaction's next change.
func (tx *btxn[K, V]) slot(k K) *V {
	if tx.t.root == nil {
		return nil
	}
	cmp := tx.t.cmp
	x := tx.mut(tx.t.root)
	tx.t.root = x
	for x.kids != nil {
		i := x.child(k, cmp)
		c := tx.mut(x.kids[i])
		x.kids[i] = c
		x = c
	}
	i, found := search(x.keys, k, cmp)
	if !found {
		return nil
	}
	return &x.vals[i]
}

// put inserts into x, which the transaction owns, and returns the new
// right sibling when x split.
func (tx *btxn[K, V]) put(x *bnode[K, V], k K, v V) (old V, replaced bool, right *bnode[K, V]) {
	cmp := tx.t.cmp
	if x.kids == nil {
		i, found := search(x.keys, k, cmp)
		if found {
			old, x.vals[i] = x.vals[i], v
			return old, true, nil
		}
		x.setKeys()
		x.keys = insertAt(x.keys, i, k)
		x.vals = insertAt(x.vals, i, v)
		return old, false, tx.split(x, i)
	}
	i := x.child(k, cmp)
	c := tx.mut(x.kids[i])
	x.kids[i] = c
	old, replaced, r := tx.put(c, k, v)
	if i == 0 && cmp(k, x.keys[0]) < 0 {
		x.setKeys()
		x.keys[0] = k
	}
	if r == nil {
		return old, replaced, nil
	}
	x.setKeys()
	x.keys = insertAt(x.keys, i+1, r.keys[0])
	x.kids = insertAt(x.kids, i+1, r)
	return old, replaced, tx.split(x, i+1)
}

// split divides x when it is over full after an insert at index i,
// returning the new right part. An insert in the last quarter of a node is
// most likely one of a run of ascending keys (ids are mostly created in
// order): the split falls just after it, so the left part stays full and
// the run continues into the right one. Otherwise x is halved.
func (tx *btxn[K, V]) split(x *bnode[K, V], i int) *bnode[K, V] {
	if len(x.keys) <= bmax {
		return nil
	}
	h := len(x.keys) / 2
	if i >= len(x.keys)*3/4 {
		h = min(i+1, len(x.keys)-1)
	}
	r := &bnode[K, V]{gen: tx.gen, ownKeys: true, keys: append(make([]K, 0, len(x.keys)-h+1), x.keys[h:]...)}
	x.keys = clip(x.keys, h)
	if x.kids != nil {
		r.kids = append(make([]*bnode[K, V], 0, len(x.kids)-h+1), x.kids[h:]...)
		x.kids = clip(x.kids, h)
	} else {
		r.vals = append(make([]V, 0, len(x.vals)-h+1), x.vals[h:]...)
		x.vals = clip(x.vals, h)
	}
	return r
}

// clip returns s[:n] in an array with room for one more: a tree at rest
// holds about one slot per key, whatever its nodes' fill.
func clip[T any](s []T, n int) []T {
	return append(make([]T, 0, n+1), s[:n]...)
}

// insertAt inserts v at index i of s, growing its array by one slot: an
// insert copies the node anyway when it is first changed in a
// transaction, and arrays sized to their node keep the tree compact.
func insertAt[T any](s []T, i int, v T) []T {
	if len(s) == cap(s) {
		s = append(make([]T, 0, len(s)+1), s...)
	}
	s = s[:len(s)+1]
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

func removeAt[T any](s []T, i int) []T {
	copy(s[i:], s[i+1:])
	var zero T
	s[len(s)-1] = zero
	return s[:len(s)-1]
}

// Delete removes k and returns its value. Nodes are not merged: a node
// emptied by deletes is removed, one thinned out stays.
func (tx *btxn[K, V]) Delete(k K) (V, bool) {
	var zero V
	if tx.t.root == nil {
		return zero, false
	}
	if _, ok := tx.t.Get(k); !ok {
		return zero, false
	}
	root := tx.mut(tx.t.root)
	old := tx.del(root, k)
	tx.t.n--
	for root.kids != nil && len(root.kids) == 1 {
		root = root.kids[0]
	}
	if len(root.keys) == 0 {
		root = nil
	}
	tx.t.root = root
	return old, true
}

// del removes k, which is present, from x, which the transaction owns.
func (tx *btxn[K, V]) del(x *bnode[K, V], k K) V {
	cmp := tx.t.cmp
	if x.kids == nil {
		i, _ := search(x.keys, k, cmp)
		old := x.vals[i]
		x.setKeys()
		x.keys = removeAt(x.keys, i)
		x.vals = removeAt(x.vals, i)
		return old
	}
	i := x.child(k, cmp)
	c := tx.mut(x.kids[i])
	x.kids[i] = c
	old := tx.del(c, k)
	if len(c.keys) == 0 {
		x.setKeys()
		x.keys = removeAt(x.keys, i)
		x.kids = removeAt(x.kids, i)
	}
	return old
}

// buildBtree returns the tree holding keys and vals, which are sorted by
// key without duplicates, with full leaves: a bulk load without the
// per-key copying of Put.
func buildBtree[K, V any](cmp func(a, b K) int, keys []K, vals []V) btree[K, V] {
	t := btree[K, V]{cmp: cmp, n: len(keys)}
	if len(keys) == 0 {
		return t
	}
	level := make([]*bnode[K, V], 0, (len(keys)+bmax-1)/bmax)
	for i := 0; i < len(keys); i += bmax {
		j := min(i+bmax, len(keys))
		level = append(level, &bnode[K, V]{ownKeys: true, keys: keys[i:j:j], vals: vals[i:j:j]})
	}
	for len(level) > 1 {
		up := make([]*bnode[K, V], 0, (len(level)+bmax-1)/bmax)
		for i := 0; i < len(level); i += bmax {
			j := min(i+bmax, len(level))
			x := &bnode[K, V]{ownKeys: true, keys: make([]K, j-i), kids: level[i:j:j]}
			for n, c := range x.kids {
				x.keys[n] = c.keys[0]
			}
			up = append(up, x)
		}
		level = up
	}
	t.root = level[0]
	return t
}
