package twingraph_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// hintWorld applies random writes to several graphs that share structure
// (forks of one another, and a graph loaded from a snapshot of one), and
// keeps old snapshots of each, to check that following a relationship
// (TwinSeeker.Target, which trusts the relationship's hint when it can)
// always answers what looking its target up by id answers, in every
// snapshot, however the hints were set since.
type hintWorld struct {
	t     *testing.T
	r     *rand.Rand
	pos   map[*twingraph.Graph]uint64
	snaps []*twingraph.Snapshot
}

const hintTwins = 12

func (w *hintWorld) event(g *twingraph.Graph, stream, typ string, p any) event.Event {
	e, err := twingraph.NewEvent(stream, typ, "test", p)
	if err != nil {
		w.t.Fatal(err)
	}
	w.pos[g]++
	e.Position = w.pos[g]
	e.Time = int64(e.Position) * 1e9
	return e
}

// batch makes 1–6 random valid writes against g's newest state, applied
// as one batch.
func (w *hintWorld) batch(g *twingraph.Graph) {
	// The state the batch's writes are chosen against, updated as they
	// are: which twins exist and each twin's relationship count.
	snap := g.Snapshot()
	exists := map[string]bool{}
	out := map[string]map[string]string{} // src -> rel id -> target
	in := map[string]int{}
	for t := range snap.Twins() {
		exists[t.ID] = true
		out[t.ID] = map[string]string{}
		for _, r := range t.Out {
			out[t.ID][r.ID] = r.Target
		}
		in[t.ID] = len(t.In)
	}
	var evs []event.Event
	for range 1 + w.r.IntN(6) {
		id := fmt.Sprintf("t%02d", w.r.IntN(hintTwins))
		other := fmt.Sprintf("t%02d", w.r.IntN(hintTwins))
		val := json.RawMessage(fmt.Sprint(w.r.IntN(1000)))
		switch op := w.r.IntN(10); {
		case !exists[id]:
			evs = append(evs, w.event(g, twingraph.TwinStream(id), twingraph.TypeTwinCreated, &twingraph.TwinState{ID: id, Model: "dtmi:test:T;1",
				SectionState: twingraph.SectionState{Properties: map[string]json.RawMessage{"v": val}}}))
			exists[id], out[id] = true, map[string]string{}
		case op < 3:
			evs = append(evs, w.event(g, twingraph.TwinStream(id), twingraph.TypeTwinPatched, &twingraph.TwinPatched{ID: id, Patch: json.RawMessage(`[]`),
				SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"v": val}}}))
		case op == 3:
			evs = append(evs, w.event(g, twingraph.TwinStream(id), twingraph.TypeTwinReplaced, &twingraph.TwinState{ID: id, Model: "dtmi:test:T;1",
				SectionState: twingraph.SectionState{Properties: map[string]json.RawMessage{"w": val}}}))
		case op < 7 && exists[other] && other != "hub":
			rid := fmt.Sprintf("r%d", w.r.IntN(3))
			if old, ok := out[id][rid]; ok {
				in[old]--
			}
			evs = append(evs, w.event(g, twingraph.TwinStream(id), twingraph.TypeRelationshipCreated, &twingraph.RelationshipState{
				Source: id, ID: rid, Name: "to", Target: other, Properties: json.RawMessage(`{}`)}))
			out[id][rid] = other
			in[other]++
		case op == 7 && len(out[id]) > 0:
			for rid := range out[id] {
				evs = append(evs, w.event(g, twingraph.TwinStream(id), twingraph.TypeRelationshipPatched, &twingraph.RelationshipPatched{
					Source: id, ID: rid, Patch: json.RawMessage(`[]`), Properties: json.RawMessage(`{"p":` + string(val) + `}`)}))
				break
			}
		case op == 8 && len(out[id]) > 0:
			for rid, tgt := range out[id] {
				evs = append(evs, w.event(g, twingraph.TwinStream(id), twingraph.TypeRelationshipDeleted, &twingraph.RelationshipRef{
					Source: id, ID: rid, Name: "to", Target: tgt}))
				delete(out[id], rid)
				in[tgt]--
				break
			}
		case op == 9 && len(out[id]) == 0 && in[id] == 0:
			evs = append(evs, w.event(g, twingraph.TwinStream(id), twingraph.TypeTwinDeleted, &twingraph.TwinState{ID: id}))
			delete(exists, id)
			delete(out, id)
		}
	}
	if len(evs) == 0 {
		return
	}
	if err := g.Apply(evs); err != nil {
		w.t.Fatal(err)
	}
}

// check follows every relationship of every kept snapshot.
func (w *hintWorld) check() {
	w.t.Helper()
	for _, s := range w.snaps {
		k := s.TwinSeeker()
		n := 0
		for t := range s.Twins() {
			for _, r := range t.Out {
				got, ok := k.Target(r)
				want, wok := s.Twin(r.Target)
				if got != want || ok != wok {
					w.t.Fatalf("snapshot at %d: %s/%s leads to %+v (%v), its target is %+v (%v)", s.Position(), r.Source, r.ID, got, ok, want, wok)
				}
				n++
			}
		}
		k.Release()
	}
}

func TestRelationshipHints(t *testing.T) {
	for seed := range uint64(20) {
		w := &hintWorld{t: t, r: rand.New(rand.NewPCG(seed, 7)), pos: map[*twingraph.Graph]uint64{}}
		main := twingraph.New(twingraph.Options{})
		// A hub more relationships point to than the writer refreshes.
		var evs []event.Event
		evs = append(evs, w.event(main, twingraph.TwinStream("hub"), twingraph.TypeTwinCreated, &twingraph.TwinState{ID: "hub", Model: "dtmi:test:T;1"}))
		for i := range 70 {
			src := fmt.Sprintf("s%02d", i)
			evs = append(evs, w.event(main, twingraph.TwinStream(src), twingraph.TypeTwinCreated, &twingraph.TwinState{ID: src, Model: "dtmi:test:T;1"}))
			evs = append(evs, w.event(main, twingraph.TwinStream(src), twingraph.TypeRelationshipCreated, &twingraph.RelationshipState{
				Source: src, ID: "h", Name: "to", Target: "hub", Properties: json.RawMessage(`{}`)}))
		}
		if err := main.Apply(evs); err != nil {
			t.Fatal(err)
		}
		graphs := []*twingraph.Graph{main}
		for step := range 300 {
			g := graphs[w.r.IntN(len(graphs))]
			switch {
			case step%60 == 30 && len(graphs) < 4:
				f := g.Snapshot().Fork()
				w.pos[f] = w.pos[g]
				graphs = append(graphs, f)
			case step == 150:
				var buf bytes.Buffer
				if _, err := twingraph.WriteSnapshot(&buf, g.Snapshot()); err != nil {
					t.Fatal(err)
				}
				l, err := twingraph.LoadSnapshot(&buf, twingraph.Options{})
				if err != nil {
					t.Fatal(err)
				}
				w.pos[l] = w.pos[g]
				graphs = append(graphs, l)
			case w.r.IntN(8) == 0:
				// Patch the hub, whose incoming hints are left alone.
				if err := g.Apply([]event.Event{w.event(g, twingraph.TwinStream("hub"), twingraph.TypeTwinPatched, &twingraph.TwinPatched{ID: "hub",
					Patch: json.RawMessage(`[]`), SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"v": json.RawMessage(fmt.Sprint(step))}}})}); err != nil {
					t.Fatal(err)
				}
			default:
				w.batch(g)
			}
			if w.r.IntN(4) == 0 {
				w.snaps = append(w.snaps, g.Snapshot())
				if len(w.snaps) > 12 {
					w.snaps = w.snaps[1:]
				}
			}
			w.snaps = append(w.snaps, g.Snapshot())
			w.check()
			w.snaps = w.snaps[:len(w.snaps)-1]
		}
	}
}

// TestRelationshipHintsConcurrent follows relationships in snapshots taken
// while the writer keeps changing their targets, a fork writing beside it:
// run under the race detector, it checks that hints are published safely,
// and each follow is checked against a lookup in the same snapshot.
func TestRelationshipHintsConcurrent(t *testing.T) {
	w := &hintWorld{t: t, r: rand.New(rand.NewPCG(3, 9)), pos: map[*twingraph.Graph]uint64{}}
	main := twingraph.New(twingraph.Options{})
	for range 20 {
		w.batch(main)
	}
	fork := main.Snapshot().Fork()
	w.pos[fork] = w.pos[main]
	stop := make(chan struct{})
	var failed atomic.Value
	var passes atomic.Int64
	var wg sync.WaitGroup
	for _, g := range []*twingraph.Graph{main, fork, main} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := g.Snapshot()
				k := s.TwinSeeker()
				for tw := range s.Twins() {
					for _, r := range tw.Out {
						got, _ := k.Target(r)
						if want, _ := s.Twin(r.Target); got != want {
							failed.Store(fmt.Sprintf("snapshot at %d: %s/%s leads to %p, its target is %p", s.Position(), r.Source, r.ID, got, want))
						}
					}
				}
				k.Release()
				passes.Add(1)
			}
		})
	}
	// Writes go on until the readers have made enough passes over them.
	for i := 0; i < 400 || (passes.Load() < 300 && i < 20000); i++ {
		if i%2 == 0 {
			w.batch(main)
		} else {
			w.batch(fork)
		}
	}
	close(stop)
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Fatal(f)
	}
}
