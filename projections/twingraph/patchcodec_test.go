package twingraph_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
)

func patchedCases() []twingraph.TwinPatched {
	return []twingraph.TwinPatched{
		{ID: "r1", Patch: raw(`[{"op":"replace","path":"/t","value":1}]`),
			SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"t": raw("1")}}},
		{ID: "r2", Model: "dtmi:x:Y;1", Patch: raw(`[]`),
			SectionChange: twingraph.SectionChange{
				Set:         map[string]json.RawMessage{"a": raw(`"x"`), "b": raw(`{"k":[1,2]}`)},
				Unset:       []string{"c", "d"},
				SourceTimes: map[string]string{"a": "2024-01-01T00:00:00Z", "b": ""}},
			Components: map[string]twingraph.ComponentChange{
				"th":  {Create: true, SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"m": raw(`"cool"`)}}},
				"old": {Remove: true},
			}},
	}
}

func TestPatchedCodec(t *testing.T) {
	for _, p := range patchedCases() {
		e := twingraph.NewPatchedEvent(twingraph.TwinStream(p.ID), "a", &p)
		var got twingraph.TwinPatched
		if err := twingraph.Decode(&e, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("decoded %+v, want %+v", got, p)
		}
		// The JSON form (version 1) decodes to the same.
		old, err := twingraph.NewEvent(e.Stream, e.Type, "a", &p)
		if err != nil {
			t.Fatal(err)
		}
		var fromJSON twingraph.TwinPatched
		if err := twingraph.Decode(&old, &fromJSON); err != nil || !reflect.DeepEqual(fromJSON, p) {
			t.Fatalf("version 1: %+v, %v", fromJSON, err)
		}
		var wrong twingraph.TwinState
		if err := twingraph.Decode(&e, &wrong); err == nil {
			t.Fatal("version 2 decoded into a TwinState")
		}
	}
}

func FuzzDecodePatched(f *testing.F) {
	for _, p := range patchedCases() {
		f.Add(twingraph.NewPatchedEvent("twin/x", "a", &p).Payload)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e := event.Event{Type: twingraph.TypeTwinPatched, SchemaVersion: twingraph.PatchedSchemaVersion, Payload: data}
		var p twingraph.TwinPatched
		if err := twingraph.Decode(&e, &p); err != nil {
			return
		}
		// What decodes re-encodes and decodes to the same value.
		again := twingraph.NewPatchedEvent("twin/x", "a", &p)
		var q twingraph.TwinPatched
		if err := twingraph.Decode(&again, &q); err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("re-encoded payload differs: %+v vs %+v (%v)", p, q, err)
		}
	})
}
