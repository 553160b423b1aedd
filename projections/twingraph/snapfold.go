package twingraph

import (
	"encoding/binary"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/twinlog/twinlog/engine/event"
)

// LoadSnapshotViewAt is LoadSnapshotView that also brings the graph to the
// end of a tail of the log when it can do so cheaply: tail returns the
// events right after the snapshot's position (in batches, in log order; it
// may block until they are read, and return nil when they cannot be). It
// returns the graph at the tail's last position with folded set, or the
// snapshot's graph with folded unset, and the caller applies the tail.
//
// The tail folds when every event in it is either a twin.patched event of
// the binary layout that the applier takes its fast path for (root
// properties only, no model change; see patchedFast) to a twin of the
// snapshot, or an event outside the twin and model streams (telemetry).
// The patches are applied by the applier's own code, in log order, to the
// decoded twins in place, before anything else can see them: no tree is
// changed and no twin copied, where applying them would look each twin up
// and copy it and its tree path. The other events touch only telemetry
// records, which no patch reads or writes, so they are applied after the
// patches, in log order. Either way the graph holds exactly what applying
// the tail to the snapshot's graph would give.
func LoadSnapshotViewAt(r io.Reader, opts Options, tail func() [][]event.Event) (g *Graph, folded bool, err error) {
	// The tail is read and checked while the snapshot is decoded.
	var checked chan foldPlan
	if tail != nil {
		checked = make(chan foldPlan, 1)
		go func() { checked <- checkTail(tail()) }()
	}
	err = readSnapshotBuf(r, true, func(data []byte) error {
		var d *snapDecoder
		var err error
		if g, d, err = decodeSnapshot(data, opts, true); err != nil || tail == nil {
			return err
		}
		switch foldTail(g, d.decoded, <-checked) {
		case foldDone:
			folded = true
		case foldSpoiled:
			// Changed part way: decoded again.
			g, _, err = decodeSnapshot(data, opts, true)
		}
		return err
	})
	if checked != nil && g == nil {
		<-checked
	}
	return g, folded, err
}

// The outcomes of foldTail.
const (
	foldNone    = iota // nothing done: g is the snapshot's graph
	foldDone           // g is at the end of the tail
	foldSpoiled        // g was changed and is neither
)

// foldPlan is a tail of the log checked for folding: its patches, in log
// order, and its other events, or ok unset when it does not fold.
type foldPlan struct {
	ok          bool
	first, last uint64 // positions
	patches     []*event.Event
	rest        []event.Event
}

// checkTail returns the plan of folding batches: every check that does not
// need the twins (see LoadSnapshotViewAt).
func checkTail(batches [][]event.Event) foldPlan {
	var p foldPlan
	for _, b := range batches {
		for i := range b {
			e := &b[i]
			if p.last != 0 && e.Position != p.last+1 {
				return foldPlan{}
			}
			if p.last == 0 {
				p.first = e.Position
			}
			p.last = e.Position
			switch {
			case e.Stream == ModelsStream:
				return foldPlan{}
			case strings.HasPrefix(e.Stream, twinPrefix):
				if e.Type != TypeTwinPatched || e.SchemaVersion != PatchedSchemaVersion || !fastPatch(e.Payload) {
					return foldPlan{}
				}
				p.patches = append(p.patches, e)
			default:
				p.rest = append(p.rest, *e)
			}
		}
	}
	p.ok = p.last != 0
	return p
}

// foldTail brings g, the graph just decoded from a snapshot (tw are its
// twins as decoded, in id order), to the end of the tail planned in p if
// it folds (see LoadSnapshotViewAt). Everything is checked before anything
// changes, so it ends with foldSpoiled only when the applier refuses what
// the checks let through.
func foldTail(g *Graph, tw decodedTwins, p foldPlan) int {
	if !p.ok || p.first != g.Position()+1 || len(tw.twins) == 0 {
		return foldNone
	}
	twinOf := make([]int32, len(p.patches))
	hint := 0
	for j, e := range p.patches {
		k := findNear(tw.twins, e.Stream[len(twinPrefix):], hint)
		if k < 0 {
			return foldNone
		}
		twinOf[j], hint = int32(k), k
	}
	// The twins were made by this load, which nothing has seen yet: they
	// are patched in place, as the applier patches a twin made by its own
	// batch, in a generation of their own. Goroutines take disjoint
	// ranges of twins, each patch of a twin in log order.
	gen := btreeGen.Add(1)
	var mu sync.Mutex
	intern := func(name string) string {
		mu.Lock()
		defer mu.Unlock()
		return g.foldIntern(name)
	}
	workers := 1
	if len(p.patches) >= 4096 {
		workers = min(runtime.GOMAXPROCS(0), 8)
	}
	spoiled := make([]bool, workers)
	patch := func(w int) {
		lo, hi := int32(len(tw.twins)*w/workers), int32(len(tw.twins)*(w+1)/workers)
		for j, e := range p.patches {
			k := twinOf[j]
			if k < lo || k >= hi {
				continue
			}
			t := tw.twins[k]
			if t.gen != gen {
				// Its property arrays are its own, as decoded.
				t.gen, t.ownProps = gen, true
			}
			if nt, ok := t.patchedFast(e.Payload, e.Position, e.Time, gen, intern); !ok || nt != t {
				spoiled[w] = true
				return
			}
		}
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(func() { patch(w) })
	}
	patch(0)
	wg.Wait()
	if slices.Contains(spoiled, true) {
		return foldSpoiled
	}
	if len(p.rest) > 0 {
		if err := g.Apply(p.rest); err != nil {
			return foldSpoiled
		}
	}
	g.pos = p.last
	g.publish()
	return foldDone
}

// foldIntern is the applier's interning of a property name, for patches folded
// into a load.
func (g *Graph) foldIntern(name string) string {
	if s, ok := g.names[name]; ok {
		return s
	}
	g.names[name] = name
	return name
}

// fastPatch reports whether patchedFast takes a twin.patched payload: its
// parse and checks (those of payloadReader), without building anything,
// in one pass over the bytes.
func fastPatch(b []byte) bool {
	var ok bool
	var model []byte
	if _, b, ok = pstr(b); !ok { // id
		return false
	}
	if model, b, ok = pstr(b); !ok || len(model) > 0 {
		return false // the model changes
	}
	if _, b, ok = pstr(b); !ok { // the JSON Patch
		return false
	}
	var set, sts [maxFastEntries]payloadKV
	var unset [maxFastEntries][]byte
	var n, nu, ns int
	if n, b, ok = pcount(b, 2); !ok || n > maxFastEntries {
		return false
	}
	for i := range n {
		if set[i].k, b, ok = pstr(b); !ok {
			return false
		}
		if set[i].v, b, ok = pstr(b); !ok {
			return false
		}
	}
	if nu, b, ok = pcount(b, 1); !ok || nu > maxFastEntries {
		return false
	}
	for i := range nu {
		if unset[i], b, ok = pstr(b); !ok {
			return false
		}
	}
	if ns, b, ok = pcount(b, 2); !ok || ns > maxFastEntries {
		return false
	}
	for i := range ns {
		if sts[i].k, b, ok = pstr(b); !ok {
			return false
		}
		if sts[i].v, b, ok = pstr(b); !ok {
			return false
		}
	}
	if nc, rest, ok := pcount(b, 5); !ok || nc != 0 || len(rest) != 0 {
		return false // components change, or trailing bytes
	}
	return !dupKeys(set[:n]) && !dupKeys(sts[:ns]) && !dupNames(unset[:nu])
}

// pvarint reads a varint as binary.Uvarint does, one-byte values inline.
func pvarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	return uvarint(b)
}

// uvarint is binary.Uvarint, out of line.
func uvarint(b []byte) (uint64, int) { return binary.Uvarint(b) }

// pstr reads a string as payloadReader.bytes does.
func pstr(b []byte) (s, rest []byte, ok bool) {
	n, m := pvarint(b)
	if m <= 0 || n > uint64(len(b)-m) {
		return nil, nil, false
	}
	return b[m : m+int(n)], b[m+int(n):], true
}

// pcount reads a count of items of at least min bytes each, as
// payloadReader.count does.
func pcount(b []byte, min int) (n int, rest []byte, ok bool) {
	v, m := pvarint(b)
	if m <= 0 {
		return 0, nil, false
	}
	b = b[m:]
	if v > uint64(len(b)/min) {
		return 0, nil, false
	}
	return int(v), b, true
}
