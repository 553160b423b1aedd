package handlers

import (
	"slices"
	"testing"

	"github.com/twinlog/twinlog/wasm-handlers/host"
)

func TestActorRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		c    cause
		want string
	}{
		{name: "one output", c: cause{handler: "avg", outputs: []outputRef{{pos: 12, seq: 0}}, hop: 1, path: []string{"a1"}},
			want: "handler:avg@2;c=12.0;h=1;p=a1"},
		{name: "merged", c: cause{handler: "avg", outputs: []outputRef{{pos: 12, seq: 1}, {pos: 15, seq: 0}, {pos: 15, seq: 4294967296}}, hop: 3, path: []string{"a1", "b2"}},
			want: "handler:avg@2;c=12.1,15.0,15.4294967296;h=3;p=a1,b2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := formatActor(tt.c.handler, "2", tt.c)
			if got != tt.want {
				t.Fatalf("actor %q, want %q", got, tt.want)
			}
			back := parseActor(got)
			if back.handler != tt.c.handler || back.hop != tt.c.hop || !slices.Equal(back.outputs, tt.c.outputs) || !slices.Equal(back.path, tt.c.path) {
				t.Fatalf("parsed %+v, want %+v", back, tt.c)
			}
		})
	}
}

func TestJoinPatches(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want string // "" when they are not joined
	}{
		{name: "two", a: `[{"op":"add","path":"/a","value":1}]`, b: ` [ {"op":"remove","path":"/b"} ]`,
			want: `[{"op":"add","path":"/a","value":1},{"op":"remove","path":"/b"}]`},
		{name: "empty first", a: `[ ]`, b: `[{"op":"remove","path":"/b"}]`, want: `[{"op":"remove","path":"/b"}]`},
		{name: "empty second", a: `[{"op":"remove","path":"/b"}]`, b: `[]`, want: `[{"op":"remove","path":"/b"}]`},
		{name: "not an array", a: `{"op":"remove","path":"/b"}`, b: `[]`},
		// Halves of one valid patch must not join into it.
		{name: "invalid halves", a: `[{"op":"add","path":"/a","value":[1]`, b: `[2]}]`},
		{name: "empty", a: ``, b: `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := joinPatches([]byte(tt.a), []byte(tt.b))
			if ok != (tt.want != "") || string(got) != tt.want {
				t.Fatalf("joinPatches = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}

func TestMergeKeepsCascadeExact(t *testing.T) {
	patch := func(pos uint64, hop int, path ...string) *write {
		return &write{kind: host.OutputPatch, body: []byte(`[{"op":"add","path":"/x","value":1}]`),
			cause: cause{outputs: []outputRef{{pos: pos}}, hop: hop, path: path}}
	}
	tests := []struct {
		name string
		next *write
		want bool
	}{
		{name: "same hop and path", next: patch(2, 1, "a"), want: true},
		{name: "other hop", next: patch(2, 2, "a")},
		{name: "other path", next: patch(2, 1, "b")},
		{name: "telemetry", next: &write{kind: host.OutputTelemetry, body: []byte(`{}`), cause: cause{outputs: []outputRef{{pos: 2}}, hop: 1, path: []string{"a"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := patch(1, 1, "a")
			if got := w.merge(tt.next); got != tt.want {
				t.Fatalf("merge = %v, want %v", got, tt.want)
			}
			want := 1
			if tt.want {
				want = 2
				if len(w.parts) != 2 || len(w.parts[0].cause.outputs) != 1 || w.parts[1] != tt.next {
					t.Fatalf("parts %+v", w.parts)
				}
			}
			if len(w.cause.outputs) != want {
				t.Fatalf("%d outputs, want %d", len(w.cause.outputs), want)
			}
		})
	}
	w := patch(1, 1, "a")
	for i := range maxMergedOutputs + 1 {
		w.merge(patch(uint64(i+2), 1, "a"))
	}
	if len(w.cause.outputs) != maxMergedOutputs {
		t.Fatalf("%d outputs merged, want at most %d", len(w.cause.outputs), maxMergedOutputs)
	}
}
