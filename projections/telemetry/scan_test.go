package telemetry

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"
)

// FuzzScanObject checks scanObject against encoding/json: it accepts
// exactly the well-formed objects json accepts (for bodies without
// malformed numbers, which it reads loosely and never keeps), and finds the
// same members with the same numeric values.
func FuzzScanObject(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { "a" : 1 } `, `{"temperature":21.5,"label":"x","on":true,"off":false,"n":null}`,
		`{"a":{"b":[1,2,{"c":"}"}]},"d":-1e3}`, `{"a\"b":2}`, `{"a":1,"a":2}`, `[1]`, `{"a":1,}`, `{"a" 1}`,
		`{"a":"\u00e9"}`, `{"a":1}x`, `{"a":[`, `{"a":1e999}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := scanObject(nil, body)
		var want map[string]json.RawMessage
		werr := json.Unmarshal(body, &want)
		if werr == nil && !ok {
			t.Fatalf("%q: rejected, json accepts it", body)
		}
		if werr != nil {
			// scanObject reads numbers loosely; other malformed input it
			// must reject.
			return
		}
		seen := map[string]member{}
		for _, m := range got {
			seen[string(m.name)] = m
		}
		if len(seen) != len(want) {
			t.Fatalf("%q: %d members, json %d", body, len(seen), len(want))
		}
		for k, raw := range want {
			m, found := seen[k]
			if !found {
				t.Fatalf("%q: member %q missing", body, k)
			}
			var wantNum bool
			var wantV float64
			switch string(raw) {
			case "true":
				wantNum, wantV = true, 1
			case "false":
				wantNum, wantV = true, 0
			default:
				if c := raw[0]; c == '-' || (c >= '0' && c <= '9') {
					if v, err := strconv.ParseFloat(string(raw), 64); err == nil && !math.IsInf(v, 0) {
						wantNum, wantV = true, v
					}
				}
			}
			if m.num != wantNum || (wantNum && m.v != wantV) {
				t.Fatalf("%q: member %q = (%v, %g), want (%v, %g)", body, k, m.num, m.v, wantNum, wantV)
			}
		}
	})
}

// FuzzDecodeTelemetry checks decodeTelemetry against encoding/json: what
// it reads, json reads the same.
func FuzzDecodeTelemetry(f *testing.F) {
	for _, s := range []string{
		`{"twin":"r1","messageId":"1","body":{"t":1}}`,
		`{"twin":"r\u00e9","component":"c","messageId":"1","sourceTime":"2026-11-24T00:00:00Z","body":{"t":1}}`,
		`{"twin":1,"body":{}}`, `{"twin":"a"}`, `{"twin":"a\"b","body":null}`, `{"TWIN":"x","body":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		_, twin, comp, st, body, ok := decodeTelemetry(nil, payload)
		if !ok {
			return
		}
		var want struct {
			Twin       string          `json:"twin"`
			Component  string          `json:"component"`
			SourceTime string          `json:"sourceTime"`
			Body       json.RawMessage `json:"body"`
		}
		if err := json.Unmarshal(payload, &want); err != nil {
			t.Fatalf("%q: read, json rejects it: %v", payload, err)
		}
		if twin != want.Twin || comp != want.Component || st != want.SourceTime || string(body) != string(want.Body) {
			t.Fatalf("%q: (%q %q %q %s), json (%q %q %q %s)", payload, twin, comp, st, body, want.Twin, want.Component, want.SourceTime, want.Body)
		}
	})
}
