package twins_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/projections/twingraph"
)

const fullRoom = `{"$metadata":{"$model":"dtmi:test:Room;1","temperature":{"sourceTime":"2024-01-02T03:04:05Z"}},
 "name":"r1","temperature":21.5,"tags":{"a":"x"},"info":{"floor":1,"label":"L"},"readings":[1,2],
 "thermostat":{"setpoint":20,"$metadata":{"setpoint":{"sourceTime":"2024-01-01T00:00:00Z"}}}}`

func TestPatchTwin(t *testing.T) {
	tests := []struct {
		name  string
		patch string
		code  string         // expected error code, "" for success
		want  map[string]any // expected members after the patch (JSON paths by top-level key)
		check func(t *testing.T, tw map[string]any)
	}{
		{name: "replace", patch: `[{"op":"replace","path":"/temperature","value":30}]`, want: map[string]any{"temperature": 30.0}},
		{name: "add new property", patch: `[{"op":"add","path":"/capacity","value":12}]`, want: map[string]any{"capacity": 12.0}},
		{name: "add is upsert", patch: `[{"op":"add","path":"/temperature","value":1}]`, want: map[string]any{"temperature": 1.0}},
		{name: "replace unset fails", patch: `[{"op":"replace","path":"/capacity","value":1}]`, code: "JsonPatchInvalid"},
		{name: "remove", patch: `[{"op":"remove","path":"/name"}]`, want: map[string]any{"name": nil}},
		{name: "remove unset fails", patch: `[{"op":"remove","path":"/capacity"}]`, code: "JsonPatchInvalid"},
		{name: "map member", patch: `[{"op":"add","path":"/tags/b","value":"y"}]`, want: map[string]any{"tags": map[string]any{"a": "x", "b": "y"}}},
		{name: "map member remove", patch: `[{"op":"remove","path":"/tags/a"}]`, want: map[string]any{"tags": map[string]any{}}},
		{name: "object field", patch: `[{"op":"replace","path":"/info/floor","value":3}]`, want: map[string]any{"info": map[string]any{"floor": 3.0, "label": "L"}}},
		{name: "object field bad type", patch: `[{"op":"replace","path":"/info/floor","value":"3"}]`, code: "ValidationFailed"},
		{name: "object unknown field", patch: `[{"op":"add","path":"/info/nope","value":1}]`, code: "ValidationFailed"},
		{name: "array append", patch: `[{"op":"add","path":"/readings/-","value":3}]`, want: map[string]any{"readings": []any{1.0, 2.0, 3.0}}},
		{name: "array insert", patch: `[{"op":"add","path":"/readings/0","value":0}]`, want: map[string]any{"readings": []any{0.0, 1.0, 2.0}}},
		{name: "array out of range", patch: `[{"op":"add","path":"/readings/5","value":0}]`, code: "JsonPatchInvalid"},
		{name: "nested in missing parent", patch: `[{"op":"add","path":"/nothing/x","value":1}]`, code: "JsonPatchInvalid"},
		{name: "component property", patch: `[{"op":"replace","path":"/thermostat/setpoint","value":18}]`,
			check: func(t *testing.T, tw map[string]any) {
				c := tw["thermostat"].(map[string]any)
				if c["setpoint"] != 18.0 {
					t.Fatalf("thermostat=%v", c)
				}
				if st := c["$metadata"].(map[string]any)["setpoint"].(map[string]any)["sourceTime"]; st != "2024-01-01T00:00:00Z" {
					t.Fatalf("sourceTime lost: %v", c)
				}
			}},
		{name: "component unknown property", patch: `[{"op":"add","path":"/thermostat/nope","value":18}]`, code: "ValidationFailed"},
		{name: "component sourceTime", patch: `[{"op":"replace","path":"/thermostat/$metadata/setpoint/sourceTime","value":"2025-05-05T05:05:05Z"}]`,
			check: func(t *testing.T, tw map[string]any) {
				st := tw["thermostat"].(map[string]any)["$metadata"].(map[string]any)["setpoint"].(map[string]any)["sourceTime"]
				if st != "2025-05-05T05:05:05Z" {
					t.Fatalf("sourceTime=%v", st)
				}
			}},
		{name: "sourceTime", patch: `[{"op":"add","path":"/$metadata/name/sourceTime","value":"2025-01-01T00:00:00.5Z"}]`,
			check: func(t *testing.T, tw map[string]any) {
				st := tw["$metadata"].(map[string]any)["name"].(map[string]any)["sourceTime"]
				if st != "2025-01-01T00:00:00.5Z" {
					t.Fatalf("sourceTime=%v", st)
				}
			}},
		{name: "bad sourceTime", patch: `[{"op":"add","path":"/$metadata/name/sourceTime","value":"yesterday"}]`, code: "ValidationFailed"},
		{name: "lastUpdateTime is read-only", patch: `[{"op":"add","path":"/$metadata/name/lastUpdateTime","value":"2025-01-01T00:00:00Z"}]`, code: "ValidationFailed"},
		{name: "remove component", patch: `[{"op":"remove","path":"/thermostat"}]`, code: "ValidationFailed"},
		{name: "unknown property", patch: `[{"op":"add","path":"/nope","value":1}]`, code: "ValidationFailed"},
		{name: "wrong type", patch: `[{"op":"replace","path":"/temperature","value":"hot"}]`, code: "ValidationFailed"},
		{name: "integer range", patch: `[{"op":"add","path":"/capacity","value":3000000000}]`, code: "ValidationFailed"},
		{name: "null value", patch: `[{"op":"replace","path":"/temperature","value":null}]`, code: "ValidationFailed"},
		{name: "dtId", patch: `[{"op":"replace","path":"/$dtId","value":"x"}]`, code: "JsonPatchInvalid"},
		{name: "root", patch: `[{"op":"replace","path":"","value":{}}]`, code: "JsonPatchInvalid"},
		{name: "not an array", patch: `{"op":"replace"}`, code: "JsonPatchInvalid"},
		{name: "bad json", patch: `[{"op":`, code: "JsonPatchInvalid"},
		{name: "unknown op", patch: `[{"op":"merge","path":"/name","value":"x"}]`, code: "JsonPatchInvalid"},
		{name: "missing value", patch: `[{"op":"add","path":"/name"}]`, code: "JsonPatchInvalid"},
		{name: "bad pointer", patch: `[{"op":"add","path":"name","value":"x"}]`, code: "JsonPatchInvalid"},
		{name: "all or nothing", patch: `[{"op":"replace","path":"/temperature","value":99},{"op":"remove","path":"/capacity"}]`, code: "JsonPatchInvalid"},
		{name: "all or nothing validation", patch: `[{"op":"replace","path":"/temperature","value":99},{"op":"add","path":"/capacity","value":"x"}]`, code: "ValidationFailed"},
		{name: "test passes", patch: `[{"op":"test","path":"/temperature","value":21.50},{"op":"replace","path":"/temperature","value":5}]`, want: map[string]any{"temperature": 5.0}},
		{name: "test fails", patch: `[{"op":"test","path":"/temperature","value":1},{"op":"replace","path":"/temperature","value":5}]`, code: "JsonPatchInvalid"},
		{name: "move", patch: `[{"op":"move","from":"/info/label","path":"/name"}]`, want: map[string]any{"name": "L", "info": map[string]any{"floor": 1.0}}},
		{name: "copy", patch: `[{"op":"copy","from":"/tags/a","path":"/name"}]`, want: map[string]any{"name": "x", "tags": map[string]any{"a": "x"}}},
		{name: "string limit", patch: `[{"op":"replace","path":"/name","value":"` + string(make([]byte, 0)) + longString(4097) + `"}]`, code: "ValidationFailed"},
		{name: "string at limit", patch: `[{"op":"replace","path":"/name","value":"` + longString(4096) + `"}]`, want: map[string]any{"name": longString(4096)}},
		{name: "migrate", patch: `[{"op":"replace","path":"/$metadata/$model","value":"dtmi:test:MeetingRoom;1"},{"op":"add","path":"/booked","value":true}]`,
			want: map[string]any{"booked": true}, check: func(t *testing.T, tw map[string]any) {
				if m := tw["$metadata"].(map[string]any)["$model"]; m != "dtmi:test:MeetingRoom;1" {
					t.Fatalf("model=%v", m)
				}
			}},
		{name: "migrate invalid", patch: `[{"op":"replace","path":"/$metadata/$model","value":"dtmi:test:Sensor;1"}]`, code: "ValidationFailed"},
		{name: "migrate unknown model", patch: `[{"op":"replace","path":"/$metadata/$model","value":"dtmi:test:Nope;1"}]`, code: "ValidationFailed"},
		{name: "booked needs migration", patch: `[{"op":"add","path":"/booked","value":true}]`, code: "ValidationFailed"},
		{name: "empty patch", patch: `[]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := withModels(t)
			etag0 := e.put("room1", fullRoom)
			before, _, _ := e.svc.GetTwin(e.ctx, "room1")
			etag, err := e.svc.PatchTwin(e.ctx, "a", "room1", []byte(tc.patch), twins.Cond{})
			if code(err) != tc.code {
				t.Fatalf("err=%v, want code %q", err, tc.code)
			}
			after, etag2, _ := e.svc.GetTwin(e.ctx, "room1")
			if tc.code != "" {
				if string(after) != string(before) || etag2 != etag0 {
					t.Fatalf("failed patch changed the twin:\n%s\n%s", before, after)
				}
				return
			}
			if etag != etag2 {
				t.Fatalf("returned etag %s, twin has %s", etag, etag2)
			}
			tw := e.twin("room1")
			for k, v := range tc.want {
				if !reflect.DeepEqual(tw[k], v) {
					t.Fatalf("%s=%#v, want %#v", k, tw[k], v)
				}
			}
			if tc.check != nil {
				tc.check(t, tw)
			}
		})
	}
}

func longString(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'x'
	}
	return string(b)
}

func TestApplyRFC6902(t *testing.T) {
	// Examples from RFC 6902 appendix A.
	tests := []struct{ name, doc, patch, want string }{
		{"A.1", `{"foo":"bar"}`, `[{"op":"add","path":"/baz","value":"qux"}]`, `{"baz":"qux","foo":"bar"}`},
		{"A.2", `{"foo":["bar","baz"]}`, `[{"op":"add","path":"/foo/1","value":"qux"}]`, `{"foo":["bar","qux","baz"]}`},
		{"A.3", `{"baz":"qux","foo":"bar"}`, `[{"op":"remove","path":"/baz"}]`, `{"foo":"bar"}`},
		{"A.4", `{"foo":["bar","qux","baz"]}`, `[{"op":"remove","path":"/foo/1"}]`, `{"foo":["bar","baz"]}`},
		{"A.5", `{"baz":"qux","foo":"bar"}`, `[{"op":"replace","path":"/baz","value":"boo"}]`, `{"baz":"boo","foo":"bar"}`},
		{"A.6", `{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}`, `[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]`,
			`{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}`},
		{"A.7", `{"foo":["all","grass","cows","eat"]}`, `[{"op":"move","from":"/foo/1","path":"/foo/3"}]`, `{"foo":["all","cows","eat","grass"]}`},
		{"A.16", `{"foo":["bar"]}`, `[{"op":"add","path":"/foo/-","value":["abc","def"]}]`, `{"foo":["bar",["abc","def"]]}`},
		{"escape", `{"a/b":1,"m~n":2}`, `[{"op":"replace","path":"/a~1b","value":3},{"op":"remove","path":"/m~0n"}]`, `{"a/b":3}`},
		{"test number", `{"n":1.0}`, `[{"op":"test","path":"/n","value":1}]`, `{"n":1.0}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := twingraph.DecodeJSON([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			ops, err := twins.ParsePatch([]byte(tc.patch))
			if err != nil {
				t.Fatal(err)
			}
			out, err := twins.Apply(doc, ops)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := twingraph.Canonical(out)
			w, _ := twingraph.DecodeJSON([]byte(tc.want))
			want, _ := twingraph.Canonical(w)
			if string(got) != string(want) {
				t.Fatalf("got %s, want %s", got, want)
			}
		})
	}
}

func FuzzPatch(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,2]}}`), []byte(`[{"op":"add","path":"/a/b/-","value":3}]`))
	f.Add([]byte(`{"a":1}`), []byte(`[{"op":"move","from":"/a","path":"/b"},{"op":"copy","from":"/b","path":"/c"},{"op":"test","path":"/c","value":1}]`))
	f.Add([]byte(`[1,2,3]`), []byte(`[{"op":"remove","path":"/1"},{"op":"replace","path":"/0","value":{"x":null}}]`))
	f.Add([]byte(`{"a~b":{"c/d":2}}`), []byte(`[{"op":"remove","path":"/a~0b/c~1d"}]`))
	f.Add([]byte(`{"t":1}`), []byte(`[{"op":"replace","path":"/t","value":-1.5e3},{"op":"add","path":"/u","value":"x"}]`))
	f.Fuzz(func(t *testing.T, doc, patch []byte) {
		ops, err := twins.ParsePatch(patch)
		want, werr := twins.ParsePatchJSON(patch)
		if (err == nil) != (werr == nil) || !reflect.DeepEqual(ops, want) {
			t.Fatalf("ParsePatch = %#v, %v; the JSON decoder's parse = %#v, %v", ops, err, want, werr)
		}
		if err != nil {
			return
		}
		if _, err := twins.MarshalOps(ops); err != nil {
			t.Fatalf("MarshalOps of parsed ops: %v", err)
		}
		d, err := twingraph.DecodeJSON(doc)
		if err != nil {
			return
		}
		out, err := twins.Apply(d, ops)
		if err != nil {
			return
		}
		enc, err := twingraph.Canonical(out)
		if err != nil {
			t.Fatalf("canonical: %v", err)
		}
		if !json.Valid(enc) {
			t.Fatalf("invalid JSON %s", enc)
		}
	})
}

// TestMarshalOpsCanonical checks that MarshalOps encodes each operation as
// the canonical encoding of its JSON object.
func TestMarshalOpsCanonical(t *testing.T) {
	for _, tc := range []struct {
		name  string
		patch string
	}{
		{name: "replace", patch: `[{"op":"replace","path":"/temperature","value":21.5}]`},
		{name: "all", patch: `[{"value":{"b":[1,"x\u003c"],"a":null},"op":"add","path":"/a~1b/c~0d"},{"op":"remove","path":"/x"},{"op":"move","from":"/a","path":"/b"},{"op":"copy","from":"/c","path":"/d"},{"op":"test","path":"/e","value":"é\n"}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops, err := twins.ParsePatch([]byte(tc.patch))
			if err != nil {
				t.Fatal(err)
			}
			got, err := twins.MarshalOps(ops)
			if err != nil {
				t.Fatal(err)
			}
			v, err := twingraph.DecodeJSON([]byte(tc.patch))
			if err != nil {
				t.Fatal(err)
			}
			want, err := twingraph.Canonical(v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("MarshalOps = %s, want %s", got, want)
			}
		})
	}
}

// TestParsePatchFast checks that ParsePatch, which parses common patches
// without the JSON decoder, agrees with the general parser.
func TestParsePatchFast(t *testing.T) {
	for _, patch := range []string{
		`[{"op":"replace","path":"/temperature","value":21.5}]`,
		` [ { "op" : "add" , "path" : "/a" , "value" : "x y" } , {"path":"/b","op":"remove"} ] `,
		`[{"op":"replace","path":"/t","value":-0.5e+10},{"op":"add","path":"/u","value":true},{"op":"add","path":"/v","value":null},{"op":"test","path":"/w","value":false}]`,
		`[{"op":"move","from":"/a~1b","path":"/c~0d"},{"op":"copy","from":"/x","path":"/y"}]`,
		`[{"op":"replace","path":"/t","value":01}]`,
		`[{"op":"replace","path":"/t","value":1.}]`,
		`[{"op":"replace","path":"/t","value":1,"value":2}]`,
		`[{"op":"replace","path":"/t","value":"\u00e9"}]`,
		`[{"op":"replace","path":"/t","value":{"a":1}}]`,
		`[{"op":"replace","path":"t","value":1}]`,
		`[{"op":"frob","path":"/t","value":1}]`,
		`[{"op":"replace","path":"/t"}]`,
		`[{"op":"replace","path":"/t","value":1,"extra":2}]`,
		`[{"op":"replace","path":"/t","value":truex}]`,
		`[{"op":"replace","path":"/t","value":1}] x`,
		`[]`,
		`{}`,
		`[{"op":"replace","path":"/t","value":1},]`,
	} {
		got, gerr := twins.ParsePatch([]byte(patch))
		want, werr := twins.ParsePatchJSON([]byte(patch))
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Fatalf("%s: error %v, want %v", patch, gerr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: ops %#v, want %#v", patch, got, want)
		}
	}
}
