package twingraph

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestTwinJSONNames renders twins whose property names need escaping,
// with more properties than the names AppendJSON remembers for $metadata,
// with components, and after other bytes in the buffer: the output is
// JSON, and every property, at the root and in each component, appears in
// the body and in $metadata under the same name.
func TestTwinJSONNames(t *testing.T) {
	odd := []string{`quote"d`, `back\slash`, "tab\there", "ünï", "\u2028", "plain"}
	for _, n := range []int{0, 1, 6, 31, 32, 33, 70} {
		var props []Prop
		for i := range n {
			props = append(props, Prop{Name: fmt.Sprintf("%s%03d", odd[i%len(odd)], i), Value: fmt.Sprint(i), Updated: int64(i) * 1e9})
		}
		slices.SortFunc(props, func(a, b Prop) int { return strings.Compare(a.Name, b.Name) })
		tw := &Twin{ID: `id"1`, Model: "dtmi:x:T;1", ETagPos: 7, Section: Section{Props: props, Updated: 5e9},
			Components: []Component{{Name: `c"omp`, Section: Section{Props: props, Updated: 6e9}}}}
		out := tw.AppendJSON([]byte(`["before",`))
		var doc []json.RawMessage
		var root map[string]any
		if err := json.Unmarshal(append(out, ']'), &doc); err != nil || len(doc) != 2 || json.Unmarshal(doc[1], &root) != nil {
			t.Fatalf("%d props: not JSON: %v\n%s", n, err, out)
		}
		check := func(where string, sec map[string]any) {
			meta, _ := sec["$metadata"].(map[string]any)
			for _, p := range props {
				if v, ok := sec[p.Name].(float64); !ok || fmt.Sprint(v) != p.Value {
					t.Fatalf("%d props, %s: %q = %v", n, where, p.Name, sec[p.Name])
				}
				if _, ok := meta[p.Name].(map[string]any); !ok {
					t.Fatalf("%d props, %s: no $metadata for %q: %v", n, where, p.Name, slices.Sorted(maps.Keys(meta)))
				}
			}
		}
		check("root", root)
		comp, _ := root[`c"omp`].(map[string]any)
		check("component", comp)
	}
}
