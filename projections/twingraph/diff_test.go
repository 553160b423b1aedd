package twingraph_test

import (
	"encoding/json"
	"slices"
	"strconv"
	"testing"

	"github.com/twinlog/twinlog/projections/twingraph"
)

func applied(t *testing.T, g *gen) *twingraph.Snapshot {
	t.Helper()
	gr := twingraph.New(twingraph.Options{})
	if err := gr.Apply(g.events); err != nil {
		t.Fatal(err)
	}
	return gr.Snapshot()
}

func diffs(a, b *twingraph.Snapshot, opts twingraph.DiffOptions) []string {
	var out []string
	twingraph.Diff(a, b, opts, func(d twingraph.Difference) bool {
		out = append(out, d.Kind+" "+d.What+" "+d.Twin+"/"+d.Component+"/"+d.Name+" "+d.A+" -> "+d.B)
		return true
	})
	return out
}

func TestDiff(t *testing.T) {
	base := &gen{t: t}
	base.add(twingraph.ModelsStream, twingraph.TypeModelUploaded, &twingraph.ModelsUploaded{Models: benchModels(t)})
	base.twin("b0", "dtmi:bench:Building;1", map[string]json.RawMessage{"name": raw(`"b0"`)})
	base.twin("b0-f0", "dtmi:bench:Floor;1", map[string]json.RawMessage{"name": raw(`"f0"`), "level": raw("0")})
	base.twin("b0-f1", "dtmi:bench:Floor;1", map[string]json.RawMessage{"name": raw(`"f1"`), "level": raw("1")})
	base.rel("b0", "contains-b0-f0", "contains", "b0-f0")
	a := applied(t, base)

	if got := diffs(a, applied(t, base), twingraph.DiffOptions{Exact: true}); len(got) != 0 {
		t.Fatalf("two graphs from the same events differ: %q", got)
	}

	changed := &gen{t: t, pos: base.pos, events: slices.Clone(base.events)}
	changed.add(twingraph.TwinStream("b0-f0"), twingraph.TypeTwinPatched, &twingraph.TwinPatched{ID: "b0-f0",
		Patch: raw(`[]`), SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"level": raw("7")}, Unset: []string{"name"}}})
	changed.add(twingraph.TwinStream("b0-f1"), twingraph.TypeTwinDeleted, &twingraph.TwinRef{ID: "b0-f1"})
	changed.twin("b0-f2", "dtmi:bench:Floor;1", nil)
	changed.rel("b0", "contains-b0-f2", "contains", "b0-f2")
	b := applied(t, changed)

	got := diffs(a, b, twingraph.DiffOptions{})
	want := []string{
		`changed property b0-f0//level 0 -> 7`,
		`removed property b0-f0//name "f0" -> `,
		`removed twin b0-f1// dtmi:bench:Floor;1 -> `,
		`added twin b0-f2//  -> dtmi:bench:Floor;1`,
	}
	// b0's new relationship comes first: twins are walked in id order.
	rel := diffs(a, b, twingraph.DiffOptions{})[0]
	if want0 := `added relationship b0//contains-b0-f2  -> `; len(rel) < len(want0) || rel[:len(want0)] != want0 {
		t.Fatalf("first difference %q, want it to start with %q", rel, want0)
	}
	if !slices.Equal(got[1:], want) {
		t.Fatalf("differences:\n%q\nwant (after the relationship):\n%q", got, want)
	}

	// The filter hides a twin and the relationships that lead to it.
	hidden := diffs(a, b, twingraph.DiffOptions{Twin: func(id, model string) bool { return id != "b0-f2" }})
	if !slices.Equal(hidden, want[:3]) {
		t.Fatalf("filtered differences:\n%q\nwant:\n%q", hidden, want[:3])
	}

	exact := diffs(a, b, twingraph.DiffOptions{Exact: true})
	if len(exact) <= len(got) || exact[0] != "changed position // "+u(base.pos)+" -> "+u(changed.pos) {
		t.Fatalf("exact differences start %q, want the positions first", exact)
	}

	var n int
	twingraph.Diff(a, b, twingraph.DiffOptions{}, func(twingraph.Difference) bool { n++; return false })
	if n != 1 {
		t.Fatalf("fn called %d times after returning false, want 1", n)
	}
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }
