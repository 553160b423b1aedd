package twins_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/twins"
)

func TestModelLifecycle(t *testing.T) {
	e := newEnv(t)
	docs := loadModels(t)
	// Upload in two batches; the second references the first.
	got, err := e.svc.AddModels(e.ctx, "a", docs[:2])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "dtmi:test:Thing;1" || got[0].DisplayName["en"] != "Thing" || got[0].UploadTime == "" {
		t.Fatalf("AddModels=%+v", got)
	}
	if _, err := e.svc.AddModels(e.ctx, "a", docs[2:]); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddModels(e.ctx, "a", docs[:1]); code(err) != "ModelAlreadyExists" {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := e.svc.AddModels(e.ctx, "a", []json.RawMessage{docs[0], docs[0]}); code(err) != "ModelAlreadyExists" {
		t.Fatalf("duplicate in batch: %v", err)
	}
	bad := json.RawMessage(`{"@context":"dtmi:dtdl:context;3","@id":"dtmi:test:Bad;1","@type":"Interface","contents":[{"@type":"Property","name":"x","schema":"nope"}]}`)
	_, err = e.svc.AddModels(e.ctx, "a", []json.RawMessage{bad})
	var ee *engine.Error
	if !errors.As(err, &ee) || ee.Code != "DTDLParserError" || len(ee.Details) == 0 || ee.Kind != engine.KindInvalid {
		t.Fatalf("bad model: %#v", err)
	}
	// Atomic: a good model beside a bad one is not added.
	good := json.RawMessage(`{"@context":"dtmi:dtdl:context;3","@id":"dtmi:test:Good;1","@type":"Interface"}`)
	if _, err := e.svc.AddModels(e.ctx, "a", []json.RawMessage{good, bad}); code(err) != "DTDLParserError" {
		t.Fatalf("mixed batch: %v", err)
	}
	if _, err := e.svc.GetModel(e.ctx, "dtmi:test:Good;1", false); code(err) != "ModelNotFound" {
		t.Fatalf("good model of failed batch: %v", err)
	}
	// Missing dependency.
	orphan := json.RawMessage(`{"@context":"dtmi:dtdl:context;3","@id":"dtmi:test:Orphan;1","@type":"Interface","extends":"dtmi:test:Missing;1"}`)
	if _, err := e.svc.AddModels(e.ctx, "a", []json.RawMessage{orphan}); code(err) != "DTDLParserError" {
		t.Fatalf("orphan: %v", err)
	}

	md, err := e.svc.GetModel(e.ctx, "dtmi:test:Room;1", true)
	if err != nil || md.Model == nil || md.Decommissioned {
		t.Fatalf("GetModel=%+v %v", md, err)
	}
	if md, _ := e.svc.GetModel(e.ctx, "dtmi:test:Room;1", false); md.Model != nil {
		t.Fatalf("definition without asking")
	}
	all, _ := e.svc.ListModels(e.ctx, nil, false)
	if len(all) != 6 {
		t.Fatalf("ListModels=%d", len(all))
	}
	deps, err := e.svc.ListModels(e.ctx, []string{"dtmi:test:MeetingRoom;1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range deps {
		ids = append(ids, d.ID)
	}
	want := []string{"dtmi:test:MeetingRoom;1", "dtmi:test:Room;1", "dtmi:test:Thermostat;1", "dtmi:test:Thing;1"}
	if len(ids) != len(want) {
		t.Fatalf("dependencies=%v, want %v", ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("dependencies=%v, want %v", ids, want)
		}
	}
	if _, err := e.svc.ListModels(e.ctx, []string{"dtmi:test:Nope;1"}, false); code(err) != "ModelNotFound" {
		t.Fatalf("deps of unknown: %v", err)
	}

	// Decommission.
	e.put("m1", `{"$metadata":{"$model":"dtmi:test:MeetingRoom;1"},"thermostat":{}}`)
	for _, p := range []string{`[{"op":"replace","path":"/displayName","value":true}]`, `[{"op":"replace","path":"/decommissioned","value":false}]`} {
		if err := e.svc.DecommissionModel(e.ctx, "a", "dtmi:test:MeetingRoom;1", []byte(p)); code(err) != "InvalidArgument" {
			t.Fatalf("decommission %s: %v", p, err)
		}
	}
	if err := e.svc.DecommissionModel(e.ctx, "a", "dtmi:test:MeetingRoom;1", []byte(`[{"op":"replace","path":"/decommissioned","value":true}]`)); err != nil {
		t.Fatal(err)
	}
	if md, _ := e.svc.GetModel(e.ctx, "dtmi:test:MeetingRoom;1", false); !md.Decommissioned {
		t.Fatalf("not decommissioned")
	}
	if _, _, err := e.svc.PutTwin(e.ctx, "a", "m2", []byte(`{"$metadata":{"$model":"dtmi:test:MeetingRoom;1"},"thermostat":{}}`), twins.Cond{}); code(err) != "ModelDecommissioned" {
		t.Fatalf("twin of decommissioned model: %v", err)
	}
	// Existing twins of it can still be patched.
	if _, err := e.svc.PatchTwin(e.ctx, "a", "m1", []byte(`[{"op":"add","path":"/booked","value":true}]`), twins.Cond{}); err != nil {
		t.Fatal(err)
	}

	// Delete: refused while referenced.
	if err := e.svc.DeleteModel(e.ctx, "a", "dtmi:test:Thing;1"); code(err) != "ModelReferencesNotDeleted" {
		t.Fatalf("delete referenced: %v", err)
	}
	if err := e.svc.DeleteModel(e.ctx, "a", "dtmi:test:Nope;1"); code(err) != "ModelNotFound" {
		t.Fatalf("delete unknown: %v", err)
	}
	// Deleting a model with twins is allowed; the twins stay readable but read-only.
	if err := e.svc.DeleteModel(e.ctx, "a", "dtmi:test:MeetingRoom;1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.GetTwin(e.ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PatchTwin(e.ctx, "a", "m1", []byte(`[{"op":"add","path":"/booked","value":false}]`), twins.Cond{}); code(err) != "ValidationFailed" {
		t.Fatalf("patch twin of deleted model: %v", err)
	}
	if err := e.svc.DeleteTwin(e.ctx, "a", "m1", twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	// Re-upload after delete.
	if _, err := e.svc.AddModels(e.ctx, "a", docs[5:6]); err != nil {
		t.Fatalf("re-upload: %v", err)
	}
}

func TestPutTwinValidation(t *testing.T) {
	e := withModels(t)
	tests := []struct{ name, body, code string }{
		{"ok", roomBody, ""},
		{"no metadata", `{"name":"x"}`, "ValidationFailed"},
		{"no model", `{"$metadata":{}}`, "ValidationFailed"},
		{"unknown model", `{"$metadata":{"$model":"dtmi:test:Nope;1"}}`, "ValidationFailed"},
		{"missing component", `{"$metadata":{"$model":"dtmi:test:Room;1"}}`, "ValidationFailed"},
		{"unknown property", `{"$metadata":{"$model":"dtmi:test:Room;1"},"thermostat":{},"x":1}`, "ValidationFailed"},
		{"relationship name as property", `{"$metadata":{"$model":"dtmi:test:Room;1"},"thermostat":{},"hasSensor":1}`, "ValidationFailed"},
		{"bad type", `{"$metadata":{"$model":"dtmi:test:Room;1"},"thermostat":{},"temperature":"x"}`, "ValidationFailed"},
		{"bad component type", `{"$metadata":{"$model":"dtmi:test:Room;1"},"thermostat":{"setpoint":"x"}}`, "ValidationFailed"},
		{"component not object", `{"$metadata":{"$model":"dtmi:test:Room;1"},"thermostat":1}`, "ValidationFailed"},
		{"unknown $member", `{"$metadata":{"$model":"dtmi:test:Room;1"},"thermostat":{},"$foo":1}`, "ValidationFailed"},
		{"sourceTime", `{"$metadata":{"$model":"dtmi:test:Room;1","name":{"sourceTime":"2024-01-01T00:00:00Z"}},"name":"n","thermostat":{}}`, ""},
		{"sourceTime of unset", `{"$metadata":{"$model":"dtmi:test:Room;1","name":{"sourceTime":"2024-01-01T00:00:00Z"}},"thermostat":{}}`, "ValidationFailed"},
		{"bad sourceTime", `{"$metadata":{"$model":"dtmi:test:Room;1","name":{"sourceTime":"x"}},"name":"n","thermostat":{}}`, "ValidationFailed"},
		{"long string", `{"$metadata":{"$model":"dtmi:test:Room;1"},"thermostat":{},"name":"` + longString(4097) + `"}`, "ValidationFailed"},
		{"long map key", `{"$metadata":{"$model":"dtmi:test:Room;1"},"thermostat":{},"tags":{"` + longString(1025) + `":"x"}}`, "ValidationFailed"},
		{"too large", `{"$metadata":{"$model":"dtmi:test:Room;1"},"thermostat":{},"tags":{"a":"` + longString(33<<10) + `"}}`, "PayloadTooLarge"},
		{"not json", `{`, "InvalidArgument"},
		{"not object", `[]`, "InvalidArgument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.svc.PutTwin(e.ctx, "a", "t-"+tc.name, []byte(tc.body), twins.Cond{})
			if code(err) != tc.code {
				t.Fatalf("err=%v, want %q", err, tc.code)
			}
			if err != nil {
				if _, _, err := e.svc.GetTwin(e.ctx, "t-"+tc.name); code(err) != "DigitalTwinNotFound" {
					t.Fatalf("failed PUT created the twin: %v", err)
				}
			}
		})
	}
	if _, _, err := e.svc.PutTwin(e.ctx, "a", "", []byte(roomBody), twins.Cond{}); code(err) != "InvalidArgument" {
		t.Fatalf("empty id: %v", err)
	}
	if _, _, err := e.svc.PutTwin(e.ctx, "a", "new", []byte(roomBody), twins.Cond{IfMatch: "*"}); code(err) != "PreconditionFailed" {
		t.Fatalf("If-Match * on a new twin: %v", err)
	}
}

func TestComponents(t *testing.T) {
	e := withModels(t)
	e.put("room1", fullRoom)
	body, etag, err := e.svc.GetComponent(e.ctx, "room1", "thermostat")
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(body, &c)
	if c["setpoint"] != 20.0 || c["$metadata"] == nil {
		t.Fatalf("component=%s", body)
	}
	if _, _, err := e.svc.GetComponent(e.ctx, "room1", "nope"); code(err) != "ComponentNotFound" {
		t.Fatalf("unknown component: %v", err)
	}
	if _, _, err := e.svc.GetComponent(e.ctx, "nope", "thermostat"); code(err) != "DigitalTwinNotFound" {
		t.Fatalf("unknown twin: %v", err)
	}
	etag2, err := e.svc.PatchComponent(e.ctx, "a", "room1", "thermostat", []byte(`[{"op":"add","path":"/mode","value":"heat"},{"op":"replace","path":"/setpoint","value":19}]`), twins.Cond{IfMatch: etag})
	if err != nil {
		t.Fatal(err)
	}
	body, etag3, _ := e.svc.GetComponent(e.ctx, "room1", "thermostat")
	json.Unmarshal(body, &c)
	if etag3 != etag2 || c["mode"] != "heat" || c["setpoint"] != 19.0 {
		t.Fatalf("component after patch=%s", body)
	}
	if _, err := e.svc.PatchComponent(e.ctx, "a", "room1", "nope", []byte(`[]`), twins.Cond{}); code(err) != "ComponentNotFound" {
		t.Fatalf("patch unknown component: %v", err)
	}
	if _, err := e.svc.PatchComponent(e.ctx, "a", "room1", "thermostat", []byte(`[{"op":"add","path":"/temperature","value":1}]`), twins.Cond{}); code(err) != "ValidationFailed" {
		t.Fatalf("patch root property through component: %v", err)
	}
	if _, err := e.svc.PatchComponent(e.ctx, "a", "room1", "thermostat", []byte(`[]`), twins.Cond{IfMatch: etag}); code(err) != "PreconditionFailed" {
		t.Fatalf("stale etag: %v", err)
	}
}

func TestTelemetry(t *testing.T) {
	e := withModels(t)
	e.put("room1", roomBody)
	tests := []struct{ name, twin, comp, msg, src, body, code string }{
		{"ok", "room1", "", "m1", "", `{"t":1}`, ""},
		{"duplicate", "room1", "", "m1", "", `{"t":2}`, ""},
		{"component", "room1", "thermostat", "m2", "2024-01-01T00:00:00Z", `{"t":3}`, ""},
		{"no message id", "room1", "", "", "", `{}`, "InvalidArgument"},
		{"bad source time", "room1", "", "m3", "now", `{}`, "InvalidArgument"},
		{"bad body", "room1", "", "m3", "", `{`, "InvalidArgument"},
		{"unknown twin", "nope", "", "m3", "", `{}`, "DigitalTwinNotFound"},
		{"unknown component", "room1", "nope", "m3", "", `{}`, "ComponentNotFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := e.svc.SendTelemetry(e.ctx, "a", tc.twin, tc.comp, tc.msg, tc.src, []byte(tc.body))
			if code(err) != tc.code {
				t.Fatalf("err=%v, want %q", err, tc.code)
			}
		})
	}
	rec, ok := e.g.Snapshot().Telemetry("room1")
	if !ok || len(rec.Recent) != 2 || len(rec.Last) != 2 || string(rec.Last[0].Body) != `{"t":1}` || rec.Last[1].Component != "thermostat" {
		t.Fatalf("telemetry record=%+v", rec)
	}
}
