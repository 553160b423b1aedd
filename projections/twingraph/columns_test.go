package twingraph_test

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/twinlog/twinlog/projections/twingraph"
)

// TestNumberColumns checks NumberColumns.Scan against TwinsOfModel and a
// filter, on one cache across snapshots that patch, migrate, delete and
// create twins.
func TestNumberColumns(t *testing.T) {
	g := twingraph.New(twingraph.Options{})
	gn := &gen{t: t}
	models := []string{"dtmi:x:A;1", "dtmi:x:B;1", "dtmi:x:C;1"}
	for i := range 3000 {
		v := raw(fmt.Sprint(i % 50))
		switch i % 7 {
		case 3:
			v = raw(`"warm"`)
		case 5:
			v = raw(`-1.5e1`)
		}
		props := map[string]json.RawMessage{"t": v, "name": raw(`"x"`)}
		if i%11 == 0 {
			delete(props, "t")
		}
		gn.twin(fmt.Sprintf("twin-%04d", i), models[i%3], props)
	}
	apply(t, g, gn.events, 500)
	cols, ops := twingraph.NewNumberColumns(), twingraph.NewNumberColumns()
	check := func(step string) {
		t.Helper()
		s := g.Snapshot()
		for _, m := range models {
			for _, th := range []float64{-20, -15, 10, 40, 49, 100} {
				for _, op := range []twingraph.CmpOp{twingraph.Less, twingraph.LessEq, twingraph.Greater, twingraph.GreaterEq} {
					cmp := twingraph.NumberCmp{Op: op, C: th}
					keep := func(v float64) bool {
						switch op {
						case twingraph.Less:
							return v < th
						case twingraph.LessEq:
							return v <= th
						case twingraph.Greater:
							return v > th
						case twingraph.GreaterEq:
							return v >= th
						}
						return true
					}
					var want, got []string
					for tw := range s.TwinsOfModel(m, true) {
						if p, ok := tw.Prop("t"); ok {
							if v, ok := twingraph.PropNumber(p); ok && keep(v) {
								want = append(want, tw.ID)
							}
						}
					}
					// Every comparison on a cache of its own: cols sees
					// one scan per threshold, as the sweep below expects.
					scan := ops
					if op == twingraph.Greater && th != -15 && th != 49 {
						scan = cols
					}
					for tw := range scan.Scan(s, m, "t", cmp) {
						got = append(got, tw.ID)
					}
					if !slices.Equal(got, want) || (th == 10 && len(want) == 0) {
						t.Fatalf("%s: %s t %v %v: got %d twins %v, want %d %v", step, m, op, th, len(got), got, len(want), want)
					}
				}
			}
		}
		// Stopping early stops.
		n := 0
		for range cols.Scan(s, models[0], "t", twingraph.NumberCmp{Op: twingraph.Greater, C: math.Inf(-1)}) {
			n++
			if n == 3 {
				break
			}
		}
		if n != 3 {
			t.Fatalf("%s: early stop after %d", step, n)
		}
	}
	check("created")
	before := cols.Len()

	gn.events = nil
	for i := 0; i < 3000; i += 13 {
		id := fmt.Sprintf("twin-%04d", i)
		switch i % 4 {
		case 0:
			gn.add(twingraph.TwinStream(id), twingraph.TypeTwinPatched, &twingraph.TwinPatched{ID: id,
				SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"t": raw("45.5")}}})
		case 1:
			gn.add(twingraph.TwinStream(id), twingraph.TypeTwinPatched, &twingraph.TwinPatched{ID: id, Model: models[(i+1)%3],
				SectionChange: twingraph.SectionChange{Unset: []string{"name"}}})
		case 2:
			gn.add(twingraph.TwinStream(id), twingraph.TypeTwinDeleted, &twingraph.TwinRef{ID: id})
		case 3:
			gn.add(twingraph.TwinStream(id), twingraph.TypeTwinPatched, &twingraph.TwinPatched{ID: id,
				SectionChange: twingraph.SectionChange{Unset: []string{"t"}}})
		}
		gn.twin(fmt.Sprintf("twin-%04d-new", i), models[i%3], map[string]json.RawMessage{"t": raw("30")})
	}
	apply(t, g, gn.events, 7)
	check("changed")
	changed := cols.Len()
	if changed <= before {
		t.Fatalf("the changed leaves were not cached anew: %d entries before, %d after", before, changed)
	}
	// Entries of leaves no scan reads any more are dropped.
	for range 40 {
		for range cols.Scan(g.Snapshot(), models[0], "t", twingraph.NumberCmp{Op: twingraph.Greater, C: math.Inf(1)}) {
		}
	}
	if got := cols.Len(); got >= changed {
		t.Fatalf("%d cached columns after the old leaves went unread, %d before", got, changed)
	}
}

func TestNumberColumnsWorth(t *testing.T) {
	g := twingraph.New(twingraph.Options{})
	gn := &gen{t: t}
	for i := range 1000 {
		gn.twin(fmt.Sprintf("a-%04d", i), "dtmi:x:A;1", nil)
	}
	gn.twin("d-0000", "dtmi:x:D;1", nil)
	apply(t, g, gn.events, 100)
	cols := twingraph.NewNumberColumns()
	if !cols.Worth(g.Snapshot(), "dtmi:x:A;1") || cols.Worth(g.Snapshot(), "dtmi:x:D;1") {
		t.Fatal("A (1,000 of 1,001 twins) should be worth a column scan, D (1) not")
	}
	gn.events = nil
	for i := range 200 {
		gn.twin(fmt.Sprintf("d-%04d", i+1), "dtmi:x:D;1", nil)
	}
	apply(t, g, gn.events, 50)
	if !cols.Worth(g.Snapshot(), "dtmi:x:D;1") {
		t.Fatal("D (201 of 1,201 twins) should be worth a column scan once created")
	}
}
