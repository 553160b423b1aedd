package routes

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestFilter(t *testing.T) {
	ev := &CloudEvent{SpecVersion: "1.0", Type: TypeTelemetry, Source: "x.api.digitaltwins/digitaltwins/room1",
		Subject: "hvac", DataSchema: "dtmi:example:Room;1", DataContentType: "application/json",
		Data: json.RawMessage(`{"temperature":4.5,"name":"R1","$metadata":{"$model":"dtmi:example:com:floor;1"},"on":true,"n":null}`)}
	for _, tc := range []struct {
		filter string
		want   bool
	}{
		{"true", true},
		{"false", false},
		{"type = 'microsoft.iot.telemetry'", true},
		{"TYPE = 'Microsoft.DigitalTwins.Twin.Create'", false},
		{"type != 'microsoft.iot.telemetry' OR datacontenttype = 'application/json'", true},
		{"(type != 'microsoft.iot.telemetry' OR datacontenttype = 'application/json') OR (specversion != '1.0')", true},
		{"$body.temperature <= 5.5", true},
		{"$body.temperature > 5.5", false},
		{"$body.temperature = 4.5 AND subject = 'hvac'", true},
		{"NOT $body.temperature = 4.5", false},
		{"not (subject = 'x') and dataschema = 'dtmi:example:Room;1'", true},
		{"STARTS_WITH($body.$metadata.$model, 'dtmi:example:com:floor')", true},
		{"ENDS_WITH(source, '/room1')", true},
		{"CONTAINS($body.name, '1')", true},
		{"contains($body.missing, '1')", false},
		{"$body.missing = null", true},
		{"$body.missing != null", false},
		{"$body.n = null", true},
		{"$body.name != null", true},
		{"$body.on = true", true},
		{"$body.name > 5", false},
		{"$body.name < 'S'", true},
		{`type = "microsoft.iot.telemetry"`, true},
		{`$body.name = 'it\'s'`, false},
	} {
		f, err := ParseFilter(tc.filter)
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		if got := f.Match(ev); got != tc.want {
			t.Errorf("%s: match=%v, want %v", tc.filter, got, tc.want)
		}
		// The canonical text parses to the same filter.
		g, err := ParseFilter(f.String())
		if err != nil || g.String() != f.String() {
			t.Errorf("%s: canonical %q reparses to %v, %v", tc.filter, f.String(), g, err)
		}
	}
	for _, bad := range []string{"", "type", "type =", "type = 'x", "foo = 'x'", "type = 'a' AND", "(type = 'a'",
		"STARTS_WITH(type 'a')", "type ! 'a'", "$body. = 1", "type = 1e999", "1 2", "type = 'a')", "#"} {
		if _, err := ParseFilter(bad); !errors.Is(err, ErrFilter) {
			t.Errorf("%q: err=%v, want ErrFilter", bad, err)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"true", "type = 'x' AND NOT (subject != 'y' OR $body.a.b >= -1.5e3)",
		"STARTS_WITH($body.$metadata.$model, 'dtmi:a')", `CONTAINS(source, "a\"b")`, "((((true))))", "NOT NOT false"} {
		f.Add(s)
	}
	ev := &CloudEvent{Type: "t", Data: json.RawMessage(`{"a":{"b":1},"s":"x"}`)}
	f.Fuzz(func(t *testing.T, text string) {
		flt, err := ParseFilter(text)
		if err != nil {
			if !errors.Is(err, ErrFilter) {
				t.Fatalf("error %v does not wrap ErrFilter", err)
			}
			return
		}
		got := flt.Match(ev)
		g, err := ParseFilter(flt.String())
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", flt.String(), text, err)
		}
		if g.String() != flt.String() || g.Match(ev) != got {
			t.Fatalf("canonical form of %q changes the filter: %q vs %q", text, flt.String(), g.String())
		}
	})
}
