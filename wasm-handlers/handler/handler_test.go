package handler

import (
	"encoding/json"
	"reflect"
	"testing"
)

// PatchOf's fast path must encode exactly as encoding/json does.
func TestPatchOfMatchesEncodingJSON(t *testing.T) {
	values := []any{nil, 0.0, 21.5, -1e-7, 1e21, 123456789.125, 3, int64(-4), true, false, "plain", "quote\" <tag> é",
		json.RawMessage(`{"a":1}`), map[string]int{"x": 1}, []float64{1, 2}}
	for _, v := range values {
		ops := []Op{{Op: "add", Path: "/p", Value: v}, {Op: "remove", Path: "/a~1b"}}
		want, err := json.Marshal(ops)
		if err != nil {
			t.Fatal(err)
		}
		if got := PatchOf(ops...); string(got) != string(want) {
			t.Errorf("PatchOf(%#v) = %s, want %s", v, got, want)
		}
	}
}

func TestNumberMembers(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]float64
		ok       bool
	}{
		{"one", `{"reading":21.5}`, map[string]float64{"reading": 21.5}, true},
		{"spaces", " { \"t\" : -1.5e2 ,\n\"co2\":700 } ", map[string]float64{"t": -150, "co2": 700}, true},
		{"empty", `{}`, map[string]float64{}, true},
		{"other types skipped", `{"a":"x","b":2,"c":{"d":1},"e\"":3}`, map[string]float64{"b": 2, "e\"": 3}, true},
		{"not an object", `[1]`, nil, false},
		{"truncated", `{"a":1`, nil, false},
		{"trailing", `{"a":1}x`, nil, false},
		{"bad number", `{"a":1-2}`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := NumberMembers([]byte(tt.in))
			if ok != tt.ok || tt.ok && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("NumberMembers(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
