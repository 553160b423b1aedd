package twingraph

import (
	"iter"
	"slices"
	"strings"
	"sync"
)

// twinTrees hold the twins outside memdb, in two persistent B+trees (see
// btree) the writer updates in one transaction per batch:
//
//	byID     id -> *Twin
//	byModel  (model, id) -> nothing (membership only)
//
// A patch replaces one value of byID and leaves byModel alone (a memdb
// table would rewrite both indexes and look the object up again), so the
// cost of a property change is one path copy of value arrays. Readers of
// byModel look the twin up in byID of the same snapshot. Keys alias the
// twins' id and model strings, which are immutable.
type twinTrees struct {
	byID    btree[string, *Twin]
	byModel btree[modelKey, struct{}]
}

// modelKey orders twins by model, then id.
type modelKey struct{ model, id string }

func cmpModelKey(a, b modelKey) int {
	if c := strings.Compare(a.model, b.model); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

func newTwinTrees() twinTrees {
	return twinTrees{byID: newBtree[string, *Twin](strings.Compare), byModel: newBtree[modelKey, struct{}](cmpModelKey)}
}

// buildTwinTrees returns the trees holding twins, which are sorted by id
// without duplicates.
func buildTwinTrees(twins []*Twin) twinTrees {
	ids := make([]string, len(twins))
	mk := make([]modelKey, len(twins))
	for i, t := range twins {
		ids[i], mk[i] = t.ID, modelKey{t.Model, t.ID}
	}
	return buildTwinTreesKeys(ids, mk, twins)
}

// buildTwinTreesKeys is buildTwinTrees given the twins' ids and (model,
// id) keys in the same order, which the trees keep as their keys (mk is
// sorted in place). Many twins get their two trees built on two
// goroutines.
func buildTwinTreesKeys(ids []string, mk []modelKey, twins []*Twin) twinTrees {
	var byModel btree[modelKey, struct{}]
	build := func() {
		sortModelKeys(mk)
		byModel = buildBtree(cmpModelKey, mk, make([]struct{}, len(mk)))
	}
	var wg sync.WaitGroup
	if len(twins) >= parallelTwins {
		wg.Go(build)
	} else {
		build()
	}
	byID := buildBtree(strings.Compare, ids, twins)
	wg.Wait()
	return twinTrees{byID: byID, byModel: byModel}
}

// sortModelKeys sorts keys that are already in id order by model: a
// stable bucket pass per model keeps the id order within each. Keys of
// one model only are sorted already.
func sortModelKeys(mk []modelKey) {
	// Runs of one model are common in id order (and model strings are
	// shared, so comparing equal ones is cheap): the map is consulted
	// once per run.
	type group struct {
		model string
		n     int
	}
	var groups []group
	index := map[string]int32{}
	of := make([]int32, len(mk))
	last := int32(-1)
	for i, k := range mk {
		if last < 0 || groups[last].model != k.model {
			g, ok := index[k.model]
			if !ok {
				g = int32(len(groups))
				index[k.model] = g
				groups = append(groups, group{model: k.model})
			}
			last = g
		}
		groups[last].n++
		of[i] = last
	}
	if len(groups) <= 1 {
		return
	}
	order := make([]int32, len(groups))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(groups[a].model, groups[b].model) })
	start := make([]int, len(groups))
	n := 0
	for _, g := range order {
		start[g] = n
		n += groups[g].n
	}
	out := make([]modelKey, len(mk))
	for i, k := range mk {
		g := of[i]
		out[start[g]] = k
		start[g]++
	}
	copy(mk, out)
}

func (tt twinTrees) get(id string) *Twin {
	t, _ := getStr(tt.byID, id)
	return t
}

// ofModel iterates over the twins of exactly model, in id order.
func (tt twinTrees) ofModel(model string) iter.Seq[*Twin] {
	return func(yield func(*Twin) bool) {
		// The ids come in order: each lookup starts where the last ended.
		byID := tt.byID.seeker(strEq)
		tt.byModel.Ascend(modelKey{model: model}, false, func(k modelKey, _ struct{}) bool {
			if k.model != model {
				return false
			}
			if t, _ := byID.get(k.id); t != nil {
				return yield(t)
			}
			return true
		})
	}
}

// all iterates over every twin in id order.
func (tt twinTrees) all() iter.Seq[*Twin] {
	return func(yield func(*Twin) bool) {
		tt.byID.Ascend("", true, func(_ string, t *Twin) bool { return yield(t) })
	}
}

// txn starts a write transaction of graph owner, recording into h (whose
// content is dropped).
func (tt twinTrees) txn(owner uint32, h *hintLog) twinTxn {
	h.reset()
	return twinTxn{byID: tt.byID.Txn(), byModel: tt.byModel.Txn(), owner: owner, hints: h}
}

// twinTxn is a batch's write transaction on twinTrees.
type twinTxn struct {
	byID    *btxn[string, *Twin]
	byModel *btxn[modelKey, struct{}]
	owner   uint32 // the graph's id (Twin.owner)
	hints   *hintLog
}

// hintLog records what a transaction did to twin values, for its commit
// to mark the values it replaced (Twin.replaced) and point the hints of
// the relationships into the values it made at them (Relationship.target).
type hintLog struct {
	gone []*Twin // values of the graph replaced or deleted
	made []*Twin // values put, in order
}

// reset empties h, keeping its room but none of its twins.
func (h *hintLog) reset() {
	clear(h.gone)
	clear(h.made)
	h.gone, h.made = h.gone[:0], h.made[:0]
}

func (tx twinTxn) get(id string) *Twin {
	t, _ := getStr(tx.byID.t, id)
	return t
}

// put inserts or replaces t, moving it between models when its model
// changed.
func (tx twinTxn) put(t *Twin) {
	t.owner = tx.owner
	o, ok := tx.byID.Put(t.ID, t)
	if !ok {
		tx.hints.made = append(tx.hints.made, t)
		tx.byModel.Put(modelKey{t.Model, t.ID}, struct{}{})
		return
	}
	tx.swapped(o, t)
}

// slot returns where id's current value is held for replace, or nil when
// there is no twin id; see btxn.slot.
func (tx twinTxn) slot(id string) **Twin { return tx.byID.slot(id) }

// replace puts t where slot holds the twin's current value: what put does
// for a twin that exists, without finding it again.
func (tx twinTxn) replace(slot **Twin, t *Twin) {
	o := *slot
	t.owner = tx.owner
	*slot = t
	tx.swapped(o, t)
}

// swapped records that t took o's place in byID: the hints to mark and
// point, and the model index when the model changed.
func (tx twinTxn) swapped(o, t *Twin) {
	if o != t {
		tx.hints.made = append(tx.hints.made, t)
		if o.owner == tx.owner {
			tx.hints.gone = append(tx.hints.gone, o)
		}
	}
	if o.Model != t.Model {
		tx.byModel.Delete(modelKey{o.Model, o.ID})
		tx.byModel.Put(modelKey{t.Model, t.ID}, struct{}{})
	}
}

func (tx twinTxn) delete(t *Twin) {
	if t.owner == tx.owner {
		tx.hints.gone = append(tx.hints.gone, t)
	}
	tx.byID.Delete(t.ID)
	tx.byModel.Delete(modelKey{t.Model, t.ID})
}

// commit ends transaction gen (the gen of the twins it made), before its
// snapshot is published: the values it replaced are marked so as of gen,
// and the relationships into each value it made that is current point
// their hints at it (when the twin has at most hintMaxIn of them).
func (tx twinTxn) commit(gen uint64) twinTrees {
	h := tx.hints
	for _, o := range h.gone {
		o.replaced.Store(gen)
	}
	for _, t := range h.made {
		if !t.hintable(tx.owner) {
			continue
		}
		for _, r := range t.In {
			r.target.Store(t)
		}
	}
	h.reset()
	return twinTrees{byID: tx.byID.Commit(), byModel: tx.byModel.Commit()}
}
