package twingraph

import (
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
	g.gen = gen // the fold is the graph's transaction (Twin.currentAt)
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

// fastPatch reports whether patchedFast takes a twin.patched payload,
// building nothing.
func fastPatch(b []byte) bool {
	var pe patchEntries
	return pe.parse(b)
}
