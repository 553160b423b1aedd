package host

import (
	"reflect"
	"testing"
)

func TestParsePlainPatch(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"sdk", `[{"op":"add","path":"/temperature","value":21.5},{"op":"add","path":"/comfort","value":92.5}]`, true},
		{"spaces", " [ { \"op\" : \"replace\" , \"path\":\"/a~1b\", \"value\" : \"x y\" } ] ", true},
		{"remove", `[{"op":"remove","path":"/a"}]`, true},
		{"empty", `[]`, true},
		{"literals", `[{"op":"add","path":"/a","value":true},{"op":"add","path":"/b","value":null}]`, true},
		{"object value", `[{"op":"add","path":"/a","value":{"x":1}}]`, false},
		{"escaped", `[{"op":"add","path":"/a\u0062","value":1}]`, false},
		{"html", `[{"op":"add","path":"/a","value":"<b>"}]`, false},
		{"other member", `[{"op":"add","path":"/a","value":1,"from":"/b"}]`, false},
		{"bad number", `[{"op":"add","path":"/a","value":1-2}]`, false},
		{"trailing", `[]x`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parsePlainPatch([]byte(tt.in))
			if ok != tt.ok {
				t.Fatalf("parsePlainPatch(%s) ok %v, want %v", tt.in, ok, tt.ok)
			}
			if want, _ := parsePatch([]byte(tt.in)); ok && !samePatch(got, want) {
				t.Fatalf("parsePlainPatch(%s) = %q, parsePatch %q", tt.in, got, want)
			}
		})
	}
}

func samePatch(a, b []patchOp) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

// FuzzParsePlainPatch holds the fast patch reader to encoding/json's:
// whatever it reads, parsePatch reads the same.
func FuzzParsePlainPatch(f *testing.F) {
	f.Add([]byte(`[{"op":"add","path":"/temperature","value":21.5},{"op":"remove","path":"/x"}]`))
	f.Add([]byte(` [ {"value":"v","path":"/p","op":"replace", "op":"add"} ] `))
	f.Add([]byte(`[{"op":"add","path":"/a","value":-1.5e3}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := parsePlainPatch(b)
		if !ok {
			return
		}
		want, ok := parsePatch(b)
		if !ok {
			t.Fatalf("parsePlainPatch read %q, encoding/json refuses it", b)
		}
		if !samePatch(got, want) {
			t.Fatalf("%q: parsePlainPatch %q, parsePatch %q", b, got, want)
		}
	})
}
