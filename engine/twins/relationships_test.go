package twins_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/twinlog/twinlog/engine/twins"
)

const sensorBody = `{"$metadata":{"$model":"dtmi:test:Sensor;1"},"value":1}`
const floorBody = `{"$metadata":{"$model":"dtmi:test:Floor;1"}}`

func TestRelationships(t *testing.T) {
	e := withModels(t)
	e.put("room1", roomBody)
	e.put("room2", roomBody)
	e.put("s1", sensorBody)
	e.put("f1", floorBody)
	roomTag, _, _ := e.svc.GetTwin(e.ctx, "room1")

	tests := []struct {
		name, src, id, body string
		code                string
	}{
		{"ok", "room1", "r1", `{"$targetId":"s1","$relationshipName":"hasSensor","since":"2024-01-01T00:00:00Z","slot":1}`, ""},
		{"inherited target ok", "room1", "adj", `{"$targetId":"room2","$relationshipName":"adjacentTo"}`, ""},
		{"any target", "f1", "c1", `{"$targetId":"room1","$relationshipName":"contains"}`, ""},
		{"target must exist", "room1", "r2", `{"$targetId":"nope","$relationshipName":"hasSensor"}`, "TargetTwinNotFound"},
		{"source must exist", "nope", "r2", `{"$targetId":"s1","$relationshipName":"hasSensor"}`, "DigitalTwinNotFound"},
		{"undeclared name", "room1", "r2", `{"$targetId":"s1","$relationshipName":"owns"}`, "InvalidRelationship"},
		{"wrong target model", "room1", "r2", `{"$targetId":"room2","$relationshipName":"hasSensor"}`, "InvalidRelationship"},
		{"self", "room1", "r2", `{"$targetId":"room1","$relationshipName":"adjacentTo"}`, "OperationNotAllowed"},
		{"bad property", "room1", "r2", `{"$targetId":"s1","$relationshipName":"hasSensor","slot":"x"}`, "ValidationFailed"},
		{"unknown property", "room1", "r2", `{"$targetId":"s1","$relationshipName":"hasSensor","color":"red"}`, "ValidationFailed"},
		{"missing name", "room1", "r2", `{"$targetId":"s1"}`, "ValidationFailed"},
		{"not json", "room1", "r2", `{`, "InvalidArgument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, etag, err := e.svc.PutRelationship(e.ctx, "a", tc.src, tc.id, []byte(tc.body), twins.Cond{})
			if code(err) != tc.code {
				t.Fatalf("err=%v, want %q", err, tc.code)
			}
			if err != nil {
				return
			}
			got, getTag, err := e.svc.GetRelationship(e.ctx, tc.src, tc.id)
			if err != nil || string(got) != string(out) || getTag != etag {
				t.Fatalf("get=%s %s %v, put=%s %s", got, getTag, err, out, etag)
			}
		})
	}
	// The source twin's ETag does not change with its relationships.
	if after, _, _ := e.svc.GetTwin(e.ctx, "room1"); string(after) != string(roomTag) {
		t.Fatalf("twin changed by relationship writes:\n%s\n%s", roomTag, after)
	}
	body, _, _ := e.svc.GetRelationship(e.ctx, "room1", "r1")
	var rel map[string]any
	json.Unmarshal(body, &rel)
	if rel["$sourceId"] != "room1" || rel["$targetId"] != "s1" || rel["$relationshipName"] != "hasSensor" || rel["slot"] != 1.0 || rel["$relationshipId"] != "r1" {
		t.Fatalf("relationship=%s", body)
	}
	list, err := e.svc.ListRelationships(e.ctx, "room1", "")
	if err != nil || len(list) != 2 {
		t.Fatalf("ListRelationships=%d %v", len(list), err)
	}
	list, _ = e.svc.ListRelationships(e.ctx, "room1", "hasSensor")
	if len(list) != 1 {
		t.Fatalf("ListRelationships(hasSensor)=%d", len(list))
	}
	if _, err := e.svc.ListRelationships(e.ctx, "nope", ""); code(err) != "DigitalTwinNotFound" {
		t.Fatalf("ListRelationships(nope): %v", err)
	}
	in, err := e.svc.ListIncomingRelationships(e.ctx, "room1")
	if err != nil || len(in) != 1 || !strings.Contains(string(in[0]), `"$relationshipLink":"/digitaltwins/f1/relationships/c1"`) {
		t.Fatalf("incoming=%s %v", in, err)
	}

	// Deleting twins with relationships, in or out, is refused.
	for _, id := range []string{"room1", "s1", "room2"} {
		if err := e.svc.DeleteTwin(e.ctx, "a", id, twins.Cond{}); code(err) != "RelationshipsNotDeleted" {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
	// Patch, with etags.
	_, etag, _ := e.svc.GetRelationship(e.ctx, "room1", "r1")
	if _, err := e.svc.PatchRelationship(e.ctx, "a", "room1", "r1", []byte(`[{"op":"replace","path":"/slot","value":2}]`), twins.Cond{IfMatch: `W/"x"`}); code(err) != "PreconditionFailed" {
		t.Fatalf("patch stale: %v", err)
	}
	if _, err := e.svc.PatchRelationship(e.ctx, "a", "room1", "r1", []byte(`[{"op":"replace","path":"/slot","value":"two"}]`), twins.Cond{}); code(err) != "ValidationFailed" {
		t.Fatalf("patch invalid: %v", err)
	}
	if _, err := e.svc.PatchRelationship(e.ctx, "a", "room1", "r1", []byte(`[{"op":"replace","path":"/$targetId","value":"room2"}]`), twins.Cond{}); code(err) != "JsonPatchInvalid" {
		t.Fatalf("patch target: %v", err)
	}
	etag2, err := e.svc.PatchRelationship(e.ctx, "a", "room1", "r1", []byte(`[{"op":"replace","path":"/slot","value":2},{"op":"remove","path":"/since"}]`), twins.Cond{IfMatch: etag})
	if err != nil || etag2 == etag {
		t.Fatalf("patch: %v", err)
	}
	body, tag, _ := e.svc.GetRelationship(e.ctx, "room1", "r1")
	if tag != etag2 || !strings.Contains(string(body), `"slot":2`) || strings.Contains(string(body), "since") {
		t.Fatalf("after patch %s %s", body, tag)
	}
	// If-None-Match on an existing relationship.
	if _, _, err := e.svc.PutRelationship(e.ctx, "a", "room1", "r1", []byte(`{"$targetId":"s1","$relationshipName":"hasSensor"}`), twins.Cond{IfNoneMatchAny: true}); code(err) != "PreconditionFailed" {
		t.Fatalf("create-only: %v", err)
	}
	// Retarget adj from room2 to room... (a Room): use a new room.
	e.put("room3", roomBody)
	if _, _, err := e.svc.PutRelationship(e.ctx, "a", "room1", "adj", []byte(`{"$targetId":"room3","$relationshipName":"adjacentTo"}`), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	if in, _ := e.svc.ListIncomingRelationships(e.ctx, "room2"); len(in) != 0 {
		t.Fatalf("room2 incoming after retarget: %s", in)
	}
	if err := e.svc.DeleteTwin(e.ctx, "a", "room2", twins.Cond{}); err != nil {
		t.Fatalf("delete room2: %v", err)
	}
	// Delete relationships, then twins.
	if err := e.svc.DeleteRelationship(e.ctx, "a", "room1", "r1", twins.Cond{IfMatch: etag}); code(err) != "PreconditionFailed" {
		t.Fatalf("delete stale: %v", err)
	}
	for _, r := range [][2]string{{"room1", "r1"}, {"room1", "adj"}, {"f1", "c1"}} {
		if err := e.svc.DeleteRelationship(e.ctx, "a", r[0], r[1], twins.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.svc.DeleteRelationship(e.ctx, "a", "room1", "r1", twins.Cond{}); code(err) != "RelationshipNotFound" {
		t.Fatalf("delete again: %v", err)
	}
	if _, _, err := e.svc.GetRelationship(e.ctx, "room1", "r1"); code(err) != "RelationshipNotFound" {
		t.Fatalf("get deleted: %v", err)
	}
	for _, id := range []string{"room1", "s1", "room3", "f1"} {
		if err := e.svc.DeleteTwin(e.ctx, "a", id, twins.Cond{}); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
}

// TestTargetDeleteRace creates relationships to a target while deleting it
// concurrently. Whatever the interleaving, no relationship may point at a
// deleted twin: the marker on the target's stream makes the loser conflict.
func TestTargetDeleteRace(t *testing.T) {
	for round := 0; round < 20; round++ {
		e := withModels(t)
		e.put("s", sensorBody)
		const n = 8
		for i := range n {
			e.put(roomID(i), roomBody)
		}
		var wg sync.WaitGroup
		wg.Add(n + 1)
		for i := range n {
			go func() {
				defer wg.Done()
				e.svc.PutRelationship(context.Background(), "a", roomID(i), "r", []byte(`{"$targetId":"s","$relationshipName":"hasSensor"}`), twins.Cond{})
			}()
		}
		go func() {
			defer wg.Done()
			e.svc.DeleteTwin(context.Background(), "a", "s", twins.Cond{})
		}()
		wg.Wait()
		snap := e.g.Snapshot()
		_, sExists := snap.Twin("s")
		for i := range n {
			if r, ok := snap.Relationship(roomID(i), "r"); ok && !sExists {
				t.Fatalf("round %d: relationship %s/r targets deleted twin %s", round, roomID(i), r.Target)
			}
		}
	}
}

func roomID(i int) string { return "room" + string(rune('a'+i)) }
