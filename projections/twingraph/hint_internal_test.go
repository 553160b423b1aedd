package twingraph

import (
	"encoding/json"
	"testing"

	"github.com/twinlog/twinlog/engine/event"
)

// TestHintsFollowWrites checks that the writer points a relationship's
// hint at each new value of its target, so that following it needs no
// lookup, and that a snapshot older than the value still gets its own.
func TestHintsFollowWrites(t *testing.T) {
	g := New(Options{})
	pos := uint64(0)
	ev := func(stream, typ string, p any) event.Event {
		e, err := NewEvent(stream, typ, "test", p)
		if err != nil {
			t.Fatal(err)
		}
		pos++
		e.Position, e.Time = pos, int64(pos)*1e9
		return e
	}
	create := func(id string) event.Event {
		return ev(TwinStream(id), TypeTwinCreated, &TwinState{ID: id, Model: "dtmi:test:T;1"})
	}
	patch := func(id, v string) event.Event {
		return ev(TwinStream(id), TypeTwinPatched, &TwinPatched{ID: id, Patch: json.RawMessage(`[]`),
			SectionChange: SectionChange{Set: map[string]json.RawMessage{"v": json.RawMessage(v)}}})
	}
	apply := func(evs ...event.Event) {
		if err := g.Apply(evs); err != nil {
			t.Fatal(err)
		}
	}
	apply(create("a"), create("b"), ev(TwinStream("a"), TypeRelationshipCreated, &RelationshipState{
		Source: "a", ID: "r", Name: "to", Target: "b", Properties: json.RawMessage(`{}`)}))
	s1 := g.Snapshot()
	r, _ := s1.Relationship("a", "r")
	b1, _ := s1.Twin("b")
	if h := r.target.Load(); h != b1 {
		t.Fatalf("after the relationship's batch its hint is %p, want the target %p", h, b1)
	}
	apply(patch("b", "1"))
	s2 := g.Snapshot()
	b2, _ := s2.Twin("b")
	if h := r.target.Load(); h != b2 || b2 == b1 {
		t.Fatalf("after a patch of the target the hint is %p, want its new value %p (old %p)", h, b2, b1)
	}
	k1, k2 := s1.TwinSeeker(), s2.TwinSeeker()
	if got, _ := k1.Target(r); got != b1 {
		t.Fatalf("the older snapshot follows to %p, want %p", got, b1)
	}
	if got, _ := k2.Target(r); got != b2 {
		t.Fatalf("the newer snapshot follows to %p, want %p", got, b2)
	}
	// A fork's writes do not show through the hints of its parent.
	f := s2.Fork()
	if err := f.Apply([]event.Event{patch("b", "2")}); err != nil {
		t.Fatal(err)
	}
	bf, _ := f.Snapshot().Twin("b")
	if got, _ := g.Snapshot().TwinSeeker().Target(r); got != b2 {
		t.Fatalf("the parent follows to %p after the fork's patch, want %p", got, b2)
	}
	if got, _ := f.Snapshot().TwinSeeker().Target(r); got != bf {
		t.Fatalf("the fork follows to %p, want %p", got, bf)
	}
}
