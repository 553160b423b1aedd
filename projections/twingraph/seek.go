package twingraph

import "sync"

// TwinSeeker looks twins of one snapshot up by id, cheaply when the ids
// come in ascending order, as the targets of one twin's relationships
// mostly do (relationship ids often name their target): a lookup starts
// where the last one ended rather than from the root. An id below the last
// one is looked up from the root. A TwinSeeker is used by one goroutine.
type TwinSeeker struct {
	s    seeker[string, *Twin]
	last string
	// The snapshot's graph and transaction, for relationship hints.
	owner uint32
	gen   uint64
	// Room for the seeker's path in trees up to 8 levels deep (bmax^8
	// twins), so that a TwinSeeker is one allocation.
	nodes [8]*bnode[string, *Twin]
	idx   [8]int
}

// TwinSeeker returns a seeker over the snapshot's twins.
func (s *Snapshot) TwinSeeker() *TwinSeeker {
	k := twinSeekers.Get().(*TwinSeeker)
	k.s = seeker[string, *Twin]{t: s.twins.byID, eq: strEq}
	k.owner, k.gen = s.owner, s.gen
	k.s.nodes, k.s.idx = k.nodes[:0], k.idx[:0]
	return k
}

var twinSeekers = sync.Pool{New: func() any { return new(TwinSeeker) }}

// Release hands k back for a later TwinSeeker; k must not be used after.
func (k *TwinSeeker) Release() {
	*k = TwinSeeker{}
	twinSeekers.Put(k)
}

// Twin returns the twin with the given id, as Snapshot.Twin does.
func (k *TwinSeeker) Twin(id string) (*Twin, bool) {
	if id < k.last {
		k.s.nodes, k.s.idx = k.s.nodes[:0], k.s.idx[:0]
	}
	k.last = id
	t, _ := k.s.get(id)
	return t, t != nil
}

// Target returns the twin r points to, as Twin(r.Target) does. r must be
// a relationship of the snapshot. Most often r's hint holds the twin and
// nothing is looked up; a lookup that finds the twin's current value sets
// a missing hint.
func (k *TwinSeeker) Target(r *Relationship) (*Twin, bool) {
	h := r.target.Load()
	if h != nil && h.currentAt(k.owner, k.gen) {
		return h, true
	}
	t, ok := k.Twin(r.Target)
	if ok && t != h && t.hintable(k.owner) {
		r.target.CompareAndSwap(h, t)
	}
	return t, ok
}
