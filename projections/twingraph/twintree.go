package twingraph

import (
	"iter"
	"unsafe"

	iradix "github.com/hashicorp/go-immutable-radix"
)

// twinTrees hold the twins outside memdb, in two immutable radix trees the
// writer updates in one transaction per batch:
//
//	byID     id -> *Twin
//	byModel  model NUL id -> nothing (membership only)
//
// A patch replaces one leaf of byID and leaves byModel alone (a memdb table
// would rewrite both indexes and look the object up again), so the cost of
// a property change is one path copy. Readers of byModel look the twin up
// in byID of the same snapshot. Keys alias the twins' id strings, which are
// immutable.
type twinTrees struct {
	byID    *iradix.Tree
	byModel *iradix.Tree
}

func newTwinTrees() twinTrees { return twinTrees{byID: iradix.New(), byModel: iradix.New()} }

// key returns the bytes of s without copying; the tree never writes to its
// keys.
func key(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func modelKey(model, id string) []byte {
	k := make([]byte, 0, len(model)+1+len(id))
	k = append(k, model...)
	k = append(k, 0)
	return append(k, id...)
}

func (tt twinTrees) get(id string) *Twin {
	v, ok := tt.byID.Get(key(id))
	if !ok {
		return nil
	}
	return v.(*Twin)
}

// ofModel iterates over the twins of exactly model, in id order.
func (tt twinTrees) ofModel(model string) iter.Seq[*Twin] {
	return func(yield func(*Twin) bool) {
		it := tt.byModel.Root().Iterator()
		prefix := modelKey(model, "")
		it.SeekPrefix(prefix)
		for k, _, ok := it.Next(); ok; k, _, ok = it.Next() {
			if t := tt.get(string(k[len(prefix):])); t != nil && !yield(t) {
				return
			}
		}
	}
}

func (tt twinTrees) txn() twinTxn {
	return twinTxn{byID: tt.byID.Txn(), byModel: tt.byModel.Txn()}
}

// twinTxn is a batch's write transaction on twinTrees.
type twinTxn struct {
	byID    *iradix.Txn
	byModel *iradix.Txn
}

func (tx twinTxn) get(id string) *Twin {
	v, ok := tx.byID.Get(key(id))
	if !ok {
		return nil
	}
	return v.(*Twin)
}

// put inserts or replaces t, moving it between models when its model
// changed.
func (tx twinTxn) put(t *Twin) {
	old, _ := tx.byID.Insert(key(t.ID), t)
	if o, ok := old.(*Twin); ok && o.Model == t.Model {
		return
	} else if ok {
		tx.byModel.Delete(modelKey(o.Model, o.ID))
	}
	tx.byModel.Insert(modelKey(t.Model, t.ID), nil)
}

func (tx twinTxn) delete(t *Twin) {
	tx.byID.Delete(key(t.ID))
	tx.byModel.Delete(modelKey(t.Model, t.ID))
}

func (tx twinTxn) commit() twinTrees {
	return twinTrees{byID: tx.byID.CommitOnly(), byModel: tx.byModel.CommitOnly()}
}
