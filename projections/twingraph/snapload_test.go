package twingraph_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// loaders are the ways a snapshot is decoded: LoadSnapshot and
// LoadSnapshotView, each in one goroutine and in parallel blocks of a few
// twins (sizes that do not divide the twin count).
var loaders = []struct {
	name            string
	view            bool
	parallel, block int
}{
	{"plain", false, 1 << 30, 1},
	{"view", true, 1 << 30, 1},
	{"plain/parallel", false, 1, 7},
	{"view/parallel", true, 1, 13},
}

func load(t testing.TB, data []byte, view bool, parallel, block int) (*twingraph.Graph, error) {
	t.Helper()
	defer twingraph.SetLoadBlocks(parallel, block)()
	if view {
		return twingraph.LoadSnapshotView(bytes.NewReader(data), twingraph.Options{})
	}
	return twingraph.LoadSnapshot(bytes.NewReader(data), twingraph.Options{})
}

// variedGraph returns the events of a building, then of what the standard
// shape lacks: components, source times, telemetry, deleted twins and
// patches.
func variedGraph(t testing.TB) []event.Event {
	events, _, _ := buildingGraph(t, 1)
	g := &gen{t: t, pos: uint64(len(events))}
	for i := range 40 {
		id := fmt.Sprintf("c%02d", i)
		g.add(twingraph.TwinStream(id), twingraph.TypeTwinCreated, &twingraph.TwinState{ID: id, Model: "dtmi:bench:Room;1",
			SectionState: twingraph.SectionState{Properties: map[string]json.RawMessage{"temperature": raw(fmt.Sprint(i))},
				SourceTimes: map[string]string{"temperature": "2026-11-24T09:00:00Z"}},
			Components: map[string]twingraph.SectionState{"hvac": {Properties: map[string]json.RawMessage{"mode": raw(`"auto"`)}}, "empty": {}},
		})
		if i%3 == 0 {
			g.add(twingraph.TwinStream(id), twingraph.TypeTwinPatched, &twingraph.TwinPatched{ID: id, Patch: raw(`[]`),
				SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"humidity": raw("40")}, SourceTimes: map[string]string{"humidity": "2026-11-24T10:00:00Z"}}})
		}
		if i%5 == 0 {
			g.add(twingraph.TelemetryStream(id), twingraph.TypeTelemetry, &twingraph.Telemetry{Twin: id, Component: "hvac", MessageID: fmt.Sprint("m", i), Body: raw(`{"t":1}`)})
		}
		if i%7 == 0 {
			g.add(twingraph.TwinStream(id), twingraph.TypeTwinDeleted, &twingraph.TwinRef{ID: id})
		}
	}
	events = append(events, g.events...)
	return append(events, patches(t, uint64(len(events)), 50)...)
}

// TestSnapshotLoaders checks that every loader rebuilds the graph a
// snapshot was written from, at every cut of a varied history, and that
// the graph it returns applies the rest of the log as the original does.
func TestSnapshotLoaders(t *testing.T) {
	events := variedGraph(t)
	full := twingraph.New(twingraph.Options{})
	apply(t, full, events, 1000)
	want := render(full)
	for _, cut := range []int{0, 1, 300, len(events) - 120, len(events)} {
		g := twingraph.New(twingraph.Options{})
		apply(t, g, events[:cut], 500)
		data := snapshotBytes(t, g)
		for _, l := range loaders {
			loaded, err := load(t, data, l.view, l.parallel, l.block)
			if err != nil {
				t.Fatalf("cut=%d %s: %v", cut, l.name, err)
			}
			if got, want := render(loaded), render(g); got != want {
				t.Fatalf("cut=%d %s: loaded graph differs", cut, l.name)
			}
			if again := snapshotBytes(t, loaded); !bytes.Equal(again, data) {
				t.Fatalf("cut=%d %s: snapshot of the loaded graph differs", cut, l.name)
			}
			apply(t, loaded, events[cut:], 333)
			if got := render(loaded); got != want {
				t.Fatalf("cut=%d %s: snapshot + tail differs from a full replay", cut, l.name)
			}
		}
	}
}

// TestSnapshotLoadersCorrupt checks that every loader rejects truncated
// and damaged snapshots with ErrCorruptSnapshot.
func TestSnapshotLoadersCorrupt(t *testing.T) {
	events := variedGraph(t)
	g := twingraph.New(twingraph.Options{})
	apply(t, g, events, 1000)
	data := snapshotBytes(t, g)
	for _, l := range loaders {
		for n := 0; n < len(data); n += 1 + n/16 {
			if _, err := load(t, data[:n], l.view, l.parallel, l.block); !errors.Is(err, twingraph.ErrCorruptSnapshot) {
				t.Fatalf("%s: truncated to %d: err=%v, want ErrCorruptSnapshot", l.name, n, err)
			}
		}
		for i := 0; i < len(data); i += 1 + i/16 {
			bad := bytes.Clone(data)
			bad[i] ^= 0x41
			if _, err := load(t, bad, l.view, l.parallel, l.block); !errors.Is(err, twingraph.ErrCorruptSnapshot) {
				t.Fatalf("%s: byte %d flipped: err=%v, want ErrCorruptSnapshot", l.name, i, err)
			}
		}
	}
}

// foldTails returns tails for the graph of variedGraph cut at pos: lists
// of events right after it, each with whether LoadSnapshotViewAt should
// fold it.
func foldTails(t testing.TB, twins []string, pos uint64) []struct {
	name string
	evs  []event.Event
	fold bool
} {
	rng := rand.New(rand.NewPCG(7, 8))
	at := pos
	stamp := func(e event.Event) event.Event {
		at++
		e.Position, e.Time = at, 1_800_000_000_000_000_000+int64(at)*1000
		return e
	}
	patch := func(id string, set map[string]json.RawMessage, unset []string, sts map[string]string) event.Event {
		return stamp(twingraph.NewPatchedEvent(twingraph.TwinStream(id), "u", &twingraph.TwinPatched{ID: id, Patch: raw(`[]`),
			SectionChange: twingraph.SectionChange{Set: set, Unset: unset, SourceTimes: sts}}))
	}
	randomPatch := func() event.Event {
		id := twins[rng.IntN(len(twins))]
		switch rng.IntN(5) {
		case 0: // a new property, and a source time
			return patch(id, map[string]json.RawMessage{fmt.Sprintf("p%d", rng.IntN(4)): raw(fmt.Sprint(rng.IntN(100)))}, nil, map[string]string{"temperature": "2026-11-24T11:00:00Z"})
		case 1:
			return patch(id, nil, []string{"temperature"}, nil)
		case 2: // the value it has already, maybe
			return patch(id, map[string]json.RawMessage{"temperature": raw("21.25")}, nil, nil)
		default:
			return patch(id, map[string]json.RawMessage{"temperature": raw(fmt.Sprint(rng.IntN(40)))}, nil, nil)
		}
	}
	newEvent := func(stream, typ string, p any) event.Event {
		e, err := twingraph.NewEvent(stream, typ, "u", p)
		if err != nil {
			t.Fatal(err)
		}
		return stamp(e)
	}
	var out []struct {
		name string
		evs  []event.Event
		fold bool
	}
	add := func(name string, fold bool, gen func() []event.Event) {
		at = pos
		out = append(out, struct {
			name string
			evs  []event.Event
			fold bool
		}{name, gen(), fold})
	}
	add("patches", true, func() []event.Event {
		var evs []event.Event
		for range 400 {
			evs = append(evs, randomPatch())
		}
		return evs
	})
	add("patches in id order", true, func() []event.Event {
		var evs []event.Event
		for i := range 2 * len(twins) {
			evs = append(evs, patch(twins[i%len(twins)], map[string]json.RawMessage{"temperature": raw(fmt.Sprint(i))}, nil, nil))
		}
		return evs
	})
	add("patches and telemetry", true, func() []event.Event {
		var evs []event.Event
		for i := range 300 {
			evs = append(evs, randomPatch())
			if i%7 == 0 {
				id := twins[rng.IntN(len(twins))]
				evs = append(evs, newEvent(twingraph.TelemetryStream(id), twingraph.TypeTelemetry, &twingraph.Telemetry{Twin: id, MessageID: fmt.Sprint("t", i), Body: raw(`{"x":1}`)}))
			}
			if i%50 == 0 {
				p := twingraph.AppendTelemetryBatchHeader(nil, 2)
				p = twingraph.AppendTelemetryPoint(p, &twingraph.TelemetryPoint{Twin: twins[0], MessageID: fmt.Sprint("b", i), Body: []byte(`{"y":2}`)})
				p = twingraph.AppendTelemetryPoint(p, &twingraph.TelemetryPoint{Twin: "nobody", Component: "c", MessageID: fmt.Sprint("b", i), Body: []byte(`{"y":3}`)})
				evs = append(evs, stamp(event.Event{Stream: twingraph.TelemetryBatchStream(1), Type: twingraph.TypeTelemetryBatch, SchemaVersion: twingraph.TelemetryBatchSchemaVersion, Payload: p}))
			}
		}
		return evs
	})
	for _, c := range []struct {
		name string
		ev   func() event.Event
	}{
		{"a twin created", func() event.Event {
			return newEvent(twingraph.TwinStream("new1"), twingraph.TypeTwinCreated, &twingraph.TwinState{ID: "new1", Model: "dtmi:bench:Room;1"})
		}},
		{"a component patched", func() event.Event {
			return stamp(twingraph.NewPatchedEvent(twingraph.TwinStream(twins[3]), "u", &twingraph.TwinPatched{ID: twins[3], Patch: raw(`[]`),
				Components: map[string]twingraph.ComponentChange{"hvac": {SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"mode": raw(`"off"`)}}}}}))
		}},
		{"a model changed", func() event.Event {
			return stamp(twingraph.NewPatchedEvent(twingraph.TwinStream(twins[5]), "u", &twingraph.TwinPatched{ID: twins[5], Model: "dtmi:bench:Sensor;1", Patch: raw(`[]`)}))
		}},
		{"a JSON patch", func() event.Event {
			return newEvent(twingraph.TwinStream(twins[1]), twingraph.TypeTwinPatched, &twingraph.TwinPatched{ID: twins[1], Patch: raw(`[]`),
				SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"temperature": raw("3")}}})
		}},
		{"a telemetry batch the applier refuses", func() event.Event {
			// Checked only by applying it, after the patches: the
			// twins are changed already, and decoded again.
			return stamp(event.Event{Stream: twingraph.TelemetryBatchStream(0), Type: twingraph.TypeTelemetryBatch, SchemaVersion: 99, Payload: []byte{1}})
		}},
		{"a marker", func() event.Event {
			return newEvent(twingraph.TwinStream(twins[2]), twingraph.TypeRelationshipLinked, &twingraph.RelationshipRef{Source: twins[4], ID: "x", Name: "n", Target: twins[2]})
		}},
	} {
		for _, where := range []int{0, 150, 299} {
			add(fmt.Sprintf("%s at %d", c.name, where), false, func() []event.Event {
				var evs []event.Event
				for i := range 300 {
					if i == where {
						evs = append(evs, c.ev())
					}
					evs = append(evs, randomPatch())
				}
				return evs
			})
		}
	}
	return out
}

// TestSnapshotFold checks LoadSnapshotViewAt against loading the snapshot
// and applying the tail: the graph at the tail's end renders and writes the
// same, and so does it after more events; tails that cannot fold are left
// to the caller, with the snapshot's graph as the snapshot was.
func TestSnapshotFold(t *testing.T) {
	events := variedGraph(t)
	cut := len(events) - 60
	g := twingraph.New(twingraph.Options{})
	apply(t, g, events[:cut], 500)
	data := snapshotBytes(t, g)
	var twins []string
	for tw := range g.Snapshot().Twins() {
		twins = append(twins, tw.ID)
	}
	want0 := render(g)
	for _, tail := range foldTails(t, twins, g.Position()) {
		ref, err := twingraph.LoadSnapshot(bytes.NewReader(data), twingraph.Options{})
		if err != nil {
			t.Fatal(err)
		}
		refErr := ref.Apply(tail.evs)
		for _, l := range loaders {
			if !l.view {
				continue
			}
			restore := twingraph.SetLoadBlocks(l.parallel, l.block)
			var batches [][]event.Event
			for i := 0; i < len(tail.evs); i += 97 {
				batches = append(batches, tail.evs[i:min(i+97, len(tail.evs))])
			}
			at, folded, err := twingraph.LoadSnapshotViewAt(bytes.NewReader(data), twingraph.Options{}, func() [][]event.Event { return batches })
			restore()
			if err != nil {
				t.Fatalf("%s %s: %v", tail.name, l.name, err)
			}
			if folded != tail.fold {
				t.Fatalf("%s %s: folded %v, want %v", tail.name, l.name, folded, tail.fold)
			}
			if !folded {
				if render(at) != want0 {
					t.Fatalf("%s %s: the snapshot's graph changed", tail.name, l.name)
				}
				continue
			}
			if refErr != nil {
				t.Fatalf("%s: folded a tail that does not apply: %v", tail.name, refErr)
			}
			if render(at) != render(ref) || !bytes.Equal(snapshotBytes(t, at), snapshotBytes(t, ref)) {
				t.Fatalf("%s %s: folded graph differs from the applied one", tail.name, l.name)
			}
			// Both go on the same way.
			evs := patches(t, ref.Position(), 40)
			apply(t, at, evs, 13)
			ref2, _ := twingraph.LoadSnapshot(bytes.NewReader(snapshotBytes(t, ref)), twingraph.Options{})
			apply(t, ref2, evs, 13)
			if render(at) != render(ref2) {
				t.Fatalf("%s %s: folded graph applies later events differently", tail.name, l.name)
			}
		}
	}
}
