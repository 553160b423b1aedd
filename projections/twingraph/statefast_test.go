package twingraph

import (
	"encoding/json"
	"reflect"
	"testing"
)

func internCopy(b []byte) string { return string(b) }

// checkTwinFast reads data both ways: newTwinFast must either decline or
// give exactly what json.Unmarshal and NewTwin give.
func checkTwinFast(t *testing.T, data []byte) (handled bool) {
	t.Helper()
	fast, ok := newTwinFast(data, 9, 500, internCopy)
	var p TwinState
	if err := json.Unmarshal(data, &p); err != nil {
		if ok {
			t.Fatalf("newTwinFast read %q, which json.Unmarshal refuses (%v)", data, err)
		}
		return false
	}
	if !ok {
		return false
	}
	slow := NewTwin(&p, 9, 500)
	slow.ID = ""
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%s:\nfast %+v\nslow %+v", data, fast, slow)
	}
	return true
}

func TestNewTwinFast(t *testing.T) {
	written := func(st TwinState) []byte {
		e, err := NewEvent("twin/x", TypeTwinCreated, "a", st)
		if err != nil {
			t.Fatal(err)
		}
		return e.Payload
	}
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	runFastCases(t, []fastCase{
		{"as written", written(TwinState{ID: "r1", Model: "dtmi:x:Room;1",
			SectionState: SectionState{Properties: map[string]json.RawMessage{"b": raw(`"two"`), "a": raw(`1.5e3`), "c": raw(`{"x":[1,"]",{}]}`),
				"d": raw(`true`), "e": raw(`"esc\"aped\\"`), "f": raw(`[]`)}, SourceTimes: map[string]string{"a": "2026-11-26T00:00:00Z", "zz": "t"}},
			Components: map[string]SectionState{"th": {Properties: map[string]json.RawMessage{"m": raw(`2`)}}, "empty": {}}}), true},
		{"no properties", written(TwinState{ID: "r1", Model: "m"}), true},
		{"white space", []byte(" {\n\"id\" : \"r1\" ,\t\"model\":\"m\", \"properties\" : { \"a\" : 1 , \"b\" : [ 1 , 2 ] } } "), true},
		{"unicode", []byte(`{"id":"r1","model":"m","properties":{"température":"été"}}`), true},
		{"escaped name", []byte(`{"id":"r1","model":"m","properties":{"a\u0041":1}}`), false},
		{"escaped model", []byte(`{"id":"r1","model":"m\/1"}`), false},
		{"invalid UTF-8", []byte("{\"id\":\"r1\",\"model\":\"m\xff\"}"), false},
		{"null value", []byte(`{"id":"r1","model":"m","properties":{"a":null}}`), false},
		{"null properties", []byte(`{"id":"r1","model":"m","properties":null}`), false},
		{"key case", []byte(`{"ID":"r1","model":"m"}`), false},
		{"unknown key", []byte(`{"id":"r1","model":"m","x":1}`), false},
		{"duplicate property", []byte(`{"id":"r1","model":"m","properties":{"a":1,"a":2}}`), false},
		{"duplicate field", []byte(`{"id":"r1","model":"m","model":"n"}`), false},
		{"duplicate component", []byte(`{"id":"r1","model":"m","components":{"c":{},"c":{}}}`), false},
		{"bad number", []byte(`{"id":"r1","model":"m","properties":{"a":01}}`), false},
		{"bad literal", []byte(`{"id":"r1","model":"m","properties":{"a":tru}}`), false},
		{"unterminated", []byte(`{"id":"r1","model":"m","properties":{"a":"x}}`), false},
		{"trailing", []byte(`{"id":"r1","model":"m"}x`), false},
		{"number id", []byte(`{"id":1,"model":"m"}`), false},
	}, checkTwinFast)
}

func FuzzNewTwinFast(f *testing.F) {
	for _, s := range []string{
		`{"id":"r1","model":"dtmi:x:Room;1","properties":{"a":1,"b":"x","c":{"d":[1,2,{"e":null}]}},"sourceTimes":{"a":"t"},"components":{"th":{"properties":{"m":2},"sourceTimes":{"m":"u"}},"z":{}}}`,
		`{"id":"r1","model":"m","properties":{"a":"\u00e9\"","b":-0.5e-3,"c":false}}`,
		` { "model" : "m" , "id" : "r" } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkTwinFast(t, data)
	})
}

// checkReader reads data both ways: fast must either decline or give
// exactly what json.Unmarshal gives, once clear has blanked the field fast
// leaves to its caller.
func checkReader[T any](t *testing.T, name string, data []byte, fast func([]byte, *T) bool, clear func(*T)) (handled bool) {
	t.Helper()
	var got, want T
	ok := fast(data, &got)
	if err := json.Unmarshal(data, &want); err != nil {
		if ok {
			t.Fatalf("%s read %q, which json.Unmarshal refuses (%v)", name, data, err)
		}
		return false
	}
	if !ok {
		return false
	}
	clear(&want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\nfast %+v\nslow %+v", data, got, want)
	}
	return true
}

// fastCase is a payload and whether the fast reader should take it.
type fastCase struct {
	name    string
	data    []byte
	handled bool
}

func runFastCases(t *testing.T, cases []fastCase, check func(*testing.T, []byte) bool) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := check(t, tc.data); got != tc.handled {
				t.Fatalf("handled %v, want %v", got, tc.handled)
			}
		})
	}
}

func checkRelationshipFast(t *testing.T, data []byte) bool {
	t.Helper()
	return checkReader(t, "relationshipFast", data,
		func(b []byte, p *RelationshipState) bool { return relationshipFast(b, p, internCopy) },
		func(p *RelationshipState) { p.Source = "" })
}

func TestRelationshipFast(t *testing.T) {
	written, err := NewEvent("twin/a", TypeRelationshipCreated, "x", RelationshipState{Source: "a", ID: "r1", Name: "contains", Target: "b",
		Properties: json.RawMessage(`{"w":1.5,"tags":["x","y\""]}`)})
	if err != nil {
		t.Fatal(err)
	}
	runFastCases(t, []fastCase{
		{"as written", written.Payload, true},
		{"no properties", []byte(`{"source":"a","id":"r1","name":"n","target":"b","properties":{}}`), true},
		{"properties absent", []byte(`{"source":"a","id":"r1","name":"n","target":"b"}`), true},
		{"null properties", []byte(`{"source":"a","id":"r1","name":"n","target":"b","properties":null}`), false},
		{"escaped id", []byte(`{"source":"a","id":"r\u0031","name":"n","target":"b"}`), false},
		{"key case", []byte(`{"source":"a","Id":"r1","name":"n","target":"b"}`), false},
		{"duplicate", []byte(`{"source":"a","id":"r1","id":"r2","name":"n","target":"b"}`), false},
		{"bad properties", []byte(`{"source":"a","id":"r1","name":"n","target":"b","properties":{"w":}}`), false},
	}, checkRelationshipFast)
}

func FuzzRelationshipFast(f *testing.F) {
	f.Add([]byte(`{"source":"a","id":"r1","name":"contains","target":"b","properties":{"w":1.5,"tags":["x","y\""]}}`))
	f.Add([]byte(` { "id" : "r" , "target" : "t" , "properties" : { } } `))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRelationshipFast(t, data)
	})
}

func checkTelemetryFast(t *testing.T, data []byte) bool {
	t.Helper()
	return checkReader(t, "telemetryFast", data, telemetryFast, func(p *Telemetry) { p.Twin = "" })
}

func TestTelemetryFast(t *testing.T) {
	written, err := NewEvent("telemetry/a", TypeTelemetry, "x", Telemetry{Twin: "a", Component: "hvac", MessageID: "m1",
		SourceTime: "2026-11-26T00:00:00Z", Body: json.RawMessage(`{"t":21.5,"s":"x\"y"}`)})
	if err != nil {
		t.Fatal(err)
	}
	runFastCases(t, []fastCase{
		{"as written", written.Payload, true},
		{"root, no source time", []byte(`{"twin":"a","messageId":"m1","body":{"t":1}}`), true},
		{"no body", []byte(`{"twin":"a","messageId":"m1"}`), true},
		{"null body", []byte(`{"twin":"a","messageId":"m1","body":null}`), false},
		{"escaped message id", []byte(`{"twin":"a","messageId":"m\u0031","body":{}}`), false},
		{"key case", []byte(`{"twin":"a","messageID":"m1","body":{}}`), false},
		{"duplicate", []byte(`{"twin":"a","messageId":"m1","messageId":"m2","body":{}}`), false},
		{"bad body", []byte(`{"twin":"a","messageId":"m1","body":{"t":}}`), false},
	}, checkTelemetryFast)
}

func FuzzTelemetryFast(f *testing.F) {
	f.Add([]byte(`{"twin":"a","component":"hvac","messageId":"m1","sourceTime":"2026-11-26T00:00:00Z","body":{"t":21.5,"s":"x\"y"}}`))
	f.Add([]byte(` { "messageId" : "m" , "body" : [ 1 , { } ] } `))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkTelemetryFast(t, data)
	})
}
