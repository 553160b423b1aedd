package handler

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"testing"

	"github.com/twinlog/twinlog/wasm-handlers/abi"
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

func TestUnquote(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"plain", `"temperature"`, "temperature", true},
		{"empty", `""`, "", true},
		{"escapes", `"a\"b\\c\/d\u00e9"`, "a\"b\\c/dé", true},
		{"utf-8", `"é"`, "é", true},
		{"number", `21.5`, "", false},
		{"unterminated", `"abc`, "", false},
		{"lone quote", `"`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := unquote([]byte(tt.in))
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("unquote(%s) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

// FuzzDecodeEvent holds the guest's event decoder to abi.Reader's: the
// same events from the same bytes, and failure on the same inputs.
func FuzzDecodeEvent(f *testing.F) {
	evs := []abi.Event{
		{Position: 7, Time: 1700000000000000000, Seed: abi.Seed(7), Kind: abi.KindTelemetry, Type: "telemetry",
			Twin: "sensor-1", Model: "dtmi:ex:Sensor;1", Payload: []byte(`{"reading":21.5}`)},
		{Position: 9, Time: -1, Hop: 3, Kind: abi.KindTwinPatched, Type: "twin.patched", Twin: "room-1", Component: "c",
			Relationship: "contains", Changed: []string{"comfort", "", "temperature"}, Payload: []byte(`[]`)},
		{Kind: abi.KindTelemetry, Type: "other"},
		{Kind: 200, Type: "x"},
	}
	all := abi.AppendBatchHeader(nil, len(evs))
	for i := range evs {
		f.Add(abi.AppendEvent(nil, &evs[i]))
		all = abi.AppendEvent(all, &evs[i])
	}
	f.Add(all[abi.BatchHeaderSize:])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := abi.NewReader(b, nil)
		var off int
		for {
			var want, got abi.Event
			werr := r.Event(&want)
			next, ok := decodeEvent(b, off, &got)
			if ok != (werr == nil) {
				t.Fatalf("at %d: decodeEvent ok %v, abi.Reader %v", off, ok, werr)
			}
			if !ok {
				return
			}
			if len(want.Changed) == 0 {
				want.Changed = nil
			}
			if len(got.Changed) == 0 {
				got.Changed = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("at %d: decodeEvent %+v, abi.Reader %+v", off, got, want)
			}
			if off = next; off == len(b) {
				return
			}
		}
	})
}

// FuzzParseFloat holds parseFloat to strconv.ParseFloat.
func FuzzParseFloat(f *testing.F) {
	for _, s := range []string{"21.5", "-0", "0.1", "87.25", "123456789012345", "1234567890123456", "1e3", ".5", "5.",
		"-", "", "00.10", "0.0000000000000000000001", "1.7976931348623157e308", "NaN", "1_0", "+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, gerr := parseFloat([]byte(s))
		want, werr := strconv.ParseFloat(s, 64)
		if (gerr == nil) != (werr == nil) || math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Fatalf("parseFloat(%q) = %v, %v; strconv %v, %v", s, got, gerr, want, werr)
		}
	})
}
