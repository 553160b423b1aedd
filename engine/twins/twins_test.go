package twins_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/twins"
)

func TestTwinLifecycle(t *testing.T) {
	e := withModels(t)
	out, etag, err := e.svc.PutTwin(e.ctx, "a", "room1", []byte(roomBody), twins.Cond{IfNoneMatchAny: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(etag, `W/"`) {
		t.Fatalf("etag=%s", etag)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if m["$dtId"] != "room1" || m["$etag"] != etag || m["temperature"] != 21.5 {
		t.Fatalf("twin=%s", out)
	}
	md := m["$metadata"].(map[string]any)
	if md["$model"] != "dtmi:test:Room;1" || md["temperature"].(map[string]any)["lastUpdateTime"] == nil {
		t.Fatalf("metadata=%v", md)
	}
	if _, ok := m["thermostat"].(map[string]any)["$metadata"]; !ok {
		t.Fatalf("component has no $metadata: %s", out)
	}
	got, getTag, err := e.svc.GetTwin(e.ctx, "room1")
	if err != nil || string(got) != string(out) || getTag != etag {
		t.Fatalf("GetTwin=%s %s %v, want %s %s", got, getTag, err, out, etag)
	}
	// Create-only again fails.
	if _, _, err := e.svc.PutTwin(e.ctx, "a", "room1", []byte(roomBody), twins.Cond{IfNoneMatchAny: true}); code(err) != "PreconditionFailed" {
		t.Fatalf("second create: %v", err)
	}
	// Patch with a stale etag fails; with the right one succeeds.
	if _, err := e.svc.PatchTwin(e.ctx, "a", "room1", []byte(`[{"op":"replace","path":"/temperature","value":22}]`), twins.Cond{IfMatch: `W/"nope"`}); code(err) != "PreconditionFailed" {
		t.Fatalf("stale If-Match: %v", err)
	}
	etag2, err := e.svc.PatchTwin(e.ctx, "a", "room1", []byte(`[{"op":"replace","path":"/temperature","value":22}]`), twins.Cond{IfMatch: etag})
	if err != nil || etag2 == etag {
		t.Fatalf("patch: %s %v", etag2, err)
	}
	if tw := e.twin("room1"); tw["temperature"] != 22.0 || tw["$etag"] != etag2 {
		t.Fatalf("after patch: %v", tw)
	}
	// Replace.
	if _, _, err := e.svc.PutTwin(e.ctx, "a", "room1", []byte(roomBody), twins.Cond{IfMatch: etag2}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteTwin(e.ctx, "a", "room1", twins.Cond{IfMatch: etag2}); code(err) != "PreconditionFailed" {
		t.Fatalf("delete with old etag: %v", err)
	}
	if err := e.svc.DeleteTwin(e.ctx, "a", "room1", twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.GetTwin(e.ctx, "room1"); code(err) != "DigitalTwinNotFound" {
		t.Fatalf("after delete: %v", err)
	}
	if err := e.svc.DeleteTwin(e.ctx, "a", "room1", twins.Cond{}); code(err) != "DigitalTwinNotFound" {
		t.Fatalf("second delete: %v", err)
	}
	// Re-create after delete.
	e.put("room1", roomBody)
}
