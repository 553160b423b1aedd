package twingraph_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// renderSnapshot is every twin's JSON, stream version and relationships,
// outgoing and incoming, as of snap.
func renderSnapshot(snap *twingraph.Snapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "position %d\n", snap.Position())
	for t := range snap.Twins() {
		b.Write(t.AppendJSON(nil))
		fmt.Fprintf(&b, " v%d\n", t.Version)
		for _, r := range t.Out {
			b.Write(r.AppendJSON(nil))
			b.WriteByte('\n')
		}
		for _, r := range t.In {
			fmt.Fprintf(&b, "in %s/%s\n", r.Source, r.ID)
		}
	}
	return b.String()
}

// churn returns n events on a few rooms and sensors of the building graph,
// continuing at position pos: binary patches setting, unsetting and adding
// properties and source times (most twins several times in a row), JSON
// patches, relationships created, patched and deleted, and markers.
func churn(t testing.TB, pos uint64, n int, seed uint64) []event.Event {
	rng := rand.New(rand.NewPCG(seed, 1))
	g := &gen{t: t, pos: pos}
	rooms := []string{"b0-f0-r0", "b0-f0-r1", "b0-f1-r2", "b0-f3-r7"}
	rels := map[string]bool{}
	live := map[string]bool{}
	for len(g.events) < n {
		id := rooms[rng.IntN(len(rooms))]
		stream := twingraph.TwinStream(id)
		switch k := rng.IntN(10); {
		case k < 5: // the fast path
			c := twingraph.SectionChange{Set: map[string]json.RawMessage{"temperature": raw(fmt.Sprint(rng.IntN(4)))}}
			switch rng.IntN(4) {
			case 0:
				c.Set["extra"+fmt.Sprint(rng.IntN(3))] = raw(`"x"`)
			case 1:
				c.Unset = []string{"extra" + fmt.Sprint(rng.IntN(3)), "co2"}
			case 2:
				c.SourceTimes = map[string]string{"temperature": fmt.Sprintf("2026-11-%02dT00:00:00Z", 1+rng.IntN(3))}
			}
			e := twingraph.NewPatchedEvent(stream, "test", &twingraph.TwinPatched{ID: id, Patch: raw(`[]`), SectionChange: c})
			g.pos++
			e.Position, e.Time = g.pos, 1_700_000_000_000_000_000+int64(g.pos)*1000
			g.events = append(g.events, e)
		case k < 7: // the JSON payload, decoded
			g.add(stream, twingraph.TypeTwinPatched, &twingraph.TwinPatched{ID: id, Patch: raw(`[]`),
				SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"humidity": raw(fmt.Sprint(rng.IntN(100)))}}})
		case k < 9:
			tgt := rooms[rng.IntN(len(rooms))]
			rid := "near-" + tgt
			key := id + "/" + rid
			switch {
			case !rels[key]:
				g.rel(id, rid, "adjacentTo", tgt)
				rels[key] = true
			case rng.IntN(2) == 0:
				g.add(stream, twingraph.TypeRelationshipPatched, &twingraph.RelationshipPatched{Source: id, ID: rid,
					Properties: raw(fmt.Sprintf(`{"w":%d}`, rng.IntN(9)))})
			default:
				g.add(stream, twingraph.TypeRelationshipDeleted, &twingraph.RelationshipRef{Source: id, ID: rid})
				delete(rels, key)
			}
		case rng.IntN(2) == 0:
			g.add(stream, twingraph.TypeRelationshipLinked, &twingraph.RelationshipRef{Source: id, ID: "x", Target: id})
		default: // a twin of its own deleted, re-created and patched
			tmp := fmt.Sprint("tmp", rng.IntN(2))
			if live[tmp] {
				g.add(twingraph.TwinStream(tmp), twingraph.TypeTwinDeleted, &twingraph.TwinRef{ID: tmp})
			} else {
				g.twin(tmp, "dtmi:bench:Sensor;1", map[string]json.RawMessage{"value": raw("1")})
				e := twingraph.NewPatchedEvent(twingraph.TwinStream(tmp), "test", &twingraph.TwinPatched{ID: tmp, Patch: raw(`[]`),
					SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"value": raw(fmt.Sprint(rng.IntN(9)))}}})
				g.pos++
				e.Position, e.Time = g.pos, 1_700_000_000_000_000_000+int64(g.pos)*1000
				g.events = append(g.events, e)
			}
			live[tmp] = !live[tmp]
		}
	}
	return g.events[:n]
}

// TestSnapshotsStayUnchanged applies batches in which twins change many
// times (the applier changes in place what its batch made) and checks that
// every snapshot published on the way still reads as it did when taken,
// and that the graph ends as one built an event at a time.
func TestSnapshotsStayUnchanged(t *testing.T) {
	base, _, _ := buildingGraph(t, 1)
	evs := churn(t, uint64(len(base)), 6000, 7)
	g := twingraph.New(twingraph.Options{})
	apply(t, g, base, 500)
	type taken struct {
		snap *twingraph.Snapshot
		text string
	}
	var snaps []taken
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < len(evs); {
		// Small and large batches.
		n := min(1+rng.IntN(400), len(evs)-i)
		if rng.IntN(4) == 0 {
			n = min(1000+rng.IntN(1000), len(evs)-i)
		}
		if err := g.Apply(evs[i : i+n]); err != nil {
			t.Fatal(err)
		}
		i += n
		s := g.Snapshot()
		snaps = append(snaps, taken{s, renderSnapshot(s)})
	}
	for i, s := range snaps {
		if got := renderSnapshot(s.snap); got != s.text {
			t.Fatalf("snapshot %d at %d changed after later batches:\ngot  %.400s\nwant %.400s", i, s.snap.Position(), got, s.text)
		}
	}
	one := twingraph.New(twingraph.Options{})
	apply(t, one, base, 500)
	apply(t, one, evs, 1)
	twingraph.Diff(one.Snapshot(), g.Snapshot(), twingraph.DiffOptions{Exact: true}, func(d twingraph.Difference) bool {
		t.Errorf("batched vs one at a time: %s", d)
		return true
	})
	if got, want := renderSnapshot(g.Snapshot()), renderSnapshot(one.Snapshot()); got != want {
		t.Fatalf("batched and one at a time render differently")
	}
}
