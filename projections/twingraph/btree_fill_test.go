package twingraph

import (
	"fmt"
	"strings"
	"testing"
)

// slots counts the key and value slots allocated in the tree.
func (x *bnode[K, V]) slots() int {
	n := cap(x.keys) + cap(x.vals) + cap(x.kids)
	for _, c := range x.kids {
		n += c.slots()
	}
	return n
}

// TestBtreeFill checks that loading ids in the order the standard graph
// creates them (ascending runs that land inside the key space) leaves the
// nodes mostly full.
func TestBtreeFill(t *testing.T) {
	tr := newBtree[string, int](strings.Compare)
	n := 0
	tx := tr.Txn()
	for b := range 100 {
		for f := range 10 {
			for r := range 20 {
				tx.Put(fmt.Sprintf("building-%d-floor-%d-room-%d", b, f, r), n)
				n++
				if n%64 == 0 {
					tr = tx.Commit()
					tx = tr.Txn()
				}
			}
		}
	}
	tr = tx.Commit()
	per := float64(tr.root.slots()) / float64(tr.Len())
	t.Logf("%d keys, %.2f slots per key", tr.Len(), per)
	if per > 2.5 {
		t.Fatalf("%.2f slots per key, want at most 2.5", per)
	}
}
