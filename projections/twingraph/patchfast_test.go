package twingraph

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// fastTwin is a twin with a few properties, some with sourceTimes.
func fastTwin() *Twin {
	return &Twin{ID: "r1", Model: "dtmi:x:Room;1", Version: 3, ETagPos: 3,
		Section: Section{Updated: 100, Props: []Prop{
			{Name: "a", Value: `1`, Updated: 100},
			{Name: "c", Value: `"x"`, Updated: 90, SourceTime: "2026-01-01T00:00:00Z"},
			{Name: "e", Value: `true`, Updated: 80},
		}},
		Components: []Component{{Name: "th", Section: Section{Props: []Prop{{Name: "m", Value: `2`, Updated: 70}}, Updated: 70}}},
	}
}

func self(s string) string { return s }

// checkFast applies p both ways and compares: patchedFast must either
// decline or give exactly what Decode and Patched give.
func checkFast(t *testing.T, cur *Twin, payload []byte) (handled bool) {
	t.Helper()
	before := cloneTwin(cur)
	fast, ok := cur.patchedFast(payload, 9, 500, 0, self)
	if !reflect.DeepEqual(cur, before) {
		t.Fatalf("patchedFast changed a twin of no transaction:\nbefore %+v\nafter  %+v", before, cur)
	}
	// The same patch in place, on a twin of transaction 7, owning its
	// properties or not.
	owned, shared := cloneTwin(cur), cloneTwin(cur)
	owned.gen, owned.ownProps = 7, true
	shared.gen = 7
	inPlace, okOwned := owned.patchedFast(payload, 9, 500, 7, self)
	sharedProps := shared.Props
	inPlaceShared, okShared := shared.patchedFast(payload, 9, 500, 7, self)
	if okOwned != ok || okShared != ok {
		t.Fatalf("patchedFast took the payload: %v for a copy, %v in place, %v in place with shared properties", ok, okOwned, okShared)
	}
	var p TwinPatched
	if err := decodePatched(payload, &p); err != nil {
		if ok {
			t.Fatalf("patchedFast applied a payload Decode refuses (%v)", err)
		}
		return false
	}
	if !ok {
		return false
	}
	if inPlace != owned || inPlaceShared != shared {
		t.Fatalf("a twin of the transaction was copied")
	}
	if !reflect.DeepEqual(sharedProps, before.Props) {
		t.Fatalf("patchedFast changed properties the twin does not own: %+v, were %+v", sharedProps, before.Props)
	}
	slow := cur.Patched(&p, 9, 500)
	for _, got := range []*Twin{fast, inPlace, inPlaceShared} {
		g := got.clone()
		g.gen = 0
		if !reflect.DeepEqual(g, slow) {
			t.Fatalf("patch %+v:\nfast %+v\nslow %+v", p, g, slow)
		}
	}
	return true
}

// cloneTwin returns a copy of t with its own property and component
// arrays.
func cloneTwin(t *Twin) *Twin {
	n := t.clone()
	n.ownProps = t.ownProps
	n.Props = slices.Clone(t.Props)
	n.Components = slices.Clone(t.Components)
	return n
}

// TestPatchedFast compares the fast path with decoding and Patched over
// random changes of existing and new properties, and checks it declines
// what it does not handle.
func TestPatchedFast(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	names := []string{"a", "b", "c", "d", "e", "f"}
	handled := 0
	for range 2000 {
		c := SectionChange{}
		for _, n := range names {
			switch rng.IntN(6) {
			case 0:
				if c.Set == nil {
					c.Set = map[string]json.RawMessage{}
				}
				c.Set[n] = json.RawMessage(fmt.Sprint(rng.IntN(100)))
			case 1:
				c.Unset = append(c.Unset, n)
			case 2:
				if c.SourceTimes == nil {
					c.SourceTimes = map[string]string{}
				}
				c.SourceTimes[n] = []string{"", "2026-11-26T00:00:00Z"}[rng.IntN(2)]
			}
		}
		p := TwinPatched{ID: "r1", Patch: json.RawMessage(`[]`), SectionChange: c}
		if checkFast(t, fastTwin(), NewPatchedEvent("twin/r1", "a", &p).Payload) {
			handled++
		}
	}
	if handled < 1900 {
		t.Fatalf("the fast path handled %d of 2000 root-property patches", handled)
	}
	for _, p := range []TwinPatched{
		{ID: "r1", Model: "dtmi:x:Room;2"},
		{ID: "r1", Components: map[string]ComponentChange{"th": {SectionChange: SectionChange{Set: map[string]json.RawMessage{"m": json.RawMessage(`3`)}}}}},
	} {
		if _, ok := fastTwin().patchedFast(NewPatchedEvent("twin/r1", "a", &p).Payload, 9, 500, 0, self); ok {
			t.Errorf("the fast path took %+v", p)
		}
	}
}

func FuzzPatchedFast(f *testing.F) {
	for _, p := range []TwinPatched{
		{ID: "r1", SectionChange: SectionChange{Set: map[string]json.RawMessage{"a": json.RawMessage(`2`), "z": json.RawMessage(`"new"`)}, Unset: []string{"e"},
			SourceTimes: map[string]string{"c": "", "z": "2026-11-26T00:00:00Z"}}},
		{ID: "r1", Model: "dtmi:x:Room;2"},
		{ID: "r1", SectionChange: SectionChange{Unset: []string{"", "a", ""}}},
	} {
		f.Add(NewPatchedEvent("twin/r1", "a", &p).Payload)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFast(t, fastTwin(), data)
	})
}
