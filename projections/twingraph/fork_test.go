package twingraph_test

import (
	"encoding/json"
	"testing"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// TestFork applies different events to a fork of a snapshot and to the
// graph it came from, and checks that each ends exactly as a graph built
// from its own events, and that the snapshot itself never changes.
func TestFork(t *testing.T) {
	base, _, _ := buildingGraph(t, 2)
	branch := func(room, value, extra string) []event.Event {
		g := &gen{t: t, pos: uint64(len(base))}
		g.twin(extra, "dtmi:bench:Sensor;1", map[string]json.RawMessage{"kind": raw(`"co2"`), "value": raw("1")})
		g.rel("b0-f0-r0", "hasSensor-"+extra, "hasSensor", extra)
		for i := range 50 {
			g.pos++
			e := twingraph.NewPatchedEvent(twingraph.TwinStream(room), "bench", &twingraph.TwinPatched{ID: room,
				SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"temperature": raw(value)}}})
			e.Position, e.Time = g.pos, 1_700_000_000_000_000_000+int64(g.pos)*1000+int64(i)
			g.events = append(g.events, e)
		}
		return g.events
	}
	a := branch("b0-f1-r3", "30", "sensor-a")
	b := branch("b1-f2-r4", "10", "sensor-b")

	built := func(evs ...[]event.Event) *twingraph.Snapshot {
		g := twingraph.New(twingraph.Options{})
		for _, e := range evs {
			apply(t, g, e, 97)
		}
		return g.Snapshot()
	}
	same := func(what string, got, want *twingraph.Snapshot) {
		t.Helper()
		twingraph.Diff(got, want, twingraph.DiffOptions{Exact: true}, func(d twingraph.Difference) bool {
			t.Errorf("%s: %s", what, d)
			return true
		})
	}

	g := twingraph.New(twingraph.Options{})
	apply(t, g, base, 211)
	snap := g.Snapshot()
	f := snap.Fork()
	if f.Position() != snap.Position() {
		t.Fatalf("fork at %d, snapshot at %d", f.Position(), snap.Position())
	}
	// Interleaved, so that each side's writes follow the other's.
	for i := 0; i < len(a); i += 10 {
		apply(t, f, a[i:min(i+10, len(a))], 10)
		apply(t, g, b[i:min(i+10, len(b))], 10)
	}
	same("the snapshot after both moved on", snap, built(base))
	same("the fork", f.Snapshot(), built(base, a))
	same("the graph forked from", g.Snapshot(), built(base, b))
	// A fork of a fork.
	ff := f.Snapshot().Fork()
	more := &gen{t: t, pos: f.Position()}
	more.twin("sensor-c", "dtmi:bench:Sensor;1", map[string]json.RawMessage{"kind": raw(`"co2"`), "value": raw("2")})
	apply(t, ff, more.events, 1)
	if _, ok := ff.Snapshot().Twin("sensor-c"); !ok {
		t.Fatal("the fork of the fork did not apply its event")
	}
	same("the fork after its fork moved on", f.Snapshot(), built(base, a))
}
