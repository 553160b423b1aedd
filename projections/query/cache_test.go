package query

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestShape(t *testing.T) {
	for _, tc := range []struct {
		name, text, key string
		lits            []string
		ok              bool
	}{
		{name: "lookup", text: "SELECT * FROM DIGITALTWINS T WHERE T.$dtId = 'room-1'",
			key: "SELECT * FROM DIGITALTWINS T WHERE T.$dtId = ''", lits: []string{"room-1"}, ok: true},
		{name: "numbers stay", text: "SELECT TOP(3) T FROM DIGITALTWINS T WHERE T.x > 25 AND T.y = \"a\"",
			key: "SELECT TOP(3) T FROM DIGITALTWINS T WHERE T.x > 25 AND T.y = \"\"", lits: []string{"a"}, ok: true},
		{name: "quote of the other kind inside", text: `WHERE a = "it's" AND b = 'say "hi"'`,
			key: `WHERE a = "" AND b = ''`, lits: []string{"it's", `say "hi"`}, ok: true},
		{name: "comment markers inside a string", text: "WHERE a = '--x' AND b = '[[y]]' AND c = '/*'",
			key: "WHERE a = '' AND b = '' AND c = ''", lits: []string{"--x", "[[y]]", "/*"}, ok: true},
		{name: "non-ASCII inside a string", text: "WHERE a = 'café'", key: "WHERE a = ''", lits: []string{"café"}, ok: true},
		{name: "empty string", text: "WHERE a = ''", key: "WHERE a = ''", lits: []string{""}, ok: true},
		{name: "line comment", text: "SELECT * FROM DIGITALTWINS -- it's\n"},
		{name: "block comment", text: "SELECT * FROM DIGITALTWINS /* it's */"},
		{name: "escaped name", text: "SELECT T.[[it's]] FROM DIGITALTWINS T WHERE T.a = 'x'"},
		{name: "escape in a string", text: `WHERE a = 'it\'s'`},
		{name: "line break in a string", text: "WHERE a = 'x\ny'"},
		{name: "unclosed string", text: "WHERE a = 'x"},
		{name: "non-ASCII name", text: "SELECT T.température FROM DIGITALTWINS T"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, lits, ok := shape(tc.text, nil, nil)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if string(key) != tc.key || !slices.Equal(lits, tc.lits) {
				t.Fatalf("shape = %q %q, want %q %q", key, lits, tc.key, tc.lits)
			}
		})
	}
}

func cacheGraph() *memGraph {
	g := newMemGraph()
	g.addModel("dtmi:x:Room;1")
	g.addModel("dtmi:x:Floor;1")
	g.addModel("dtmi:x:Space;1")
	g.addTwin("f1", "dtmi:x:Floor;1", map[string]any{"name": "one"})
	g.addTwin("f2", "dtmi:x:Floor;1", map[string]any{"name": "two"})
	g.addTwin("r1", "dtmi:x:Room;1", map[string]any{"name": "a", "t": 20.0})
	g.addTwin("r2", "dtmi:x:Room;1", map[string]any{"name": "b", "t": 22.0})
	g.addTwin("r3", "dtmi:x:Room;1", map[string]any{"name": "c", "t": 24.0})
	g.addTwin("s1", "dtmi:x:Space;1", map[string]any{"name": "a"})
	g.addRel("c1", "f1", "contains", "r1", map[string]any{"since": "2020"})
	g.addRel("c2", "f1", "contains", "r2", map[string]any{"since": "2021"})
	g.addRel("c3", "f2", "contains", "r3", nil)
	g.seal()
	return g
}

// rowsOf runs text page by page and returns its rows, or its error.
func rowsOf(t *testing.T, run func(context.Context, Graph, string, Options) (*Result, error), g Graph, text string) string {
	t.Helper()
	got, _ := json2(run(context.Background(), g, text, Options{PageSize: 1}))
	return got
}

func json2(res *Result, err error) (string, error) {
	if err != nil {
		return "error: " + err.Error(), err
	}
	var b strings.Builder
	for _, r := range res.Rows {
		b.Write(r)
		b.WriteByte('\n')
	}
	if res.ContinuationToken != "" {
		b.WriteString("more\n")
	}
	return b.String(), nil
}

// TestCacheBindsLiterals runs queries of one shape with other literals
// through one cache: each must return its own rows, never those of the
// query whose plan it reuses.
func TestCacheBindsLiterals(t *testing.T) {
	g := cacheGraph()
	for _, tc := range []struct {
		name  string
		texts []string
	}{
		{"lookup", []string{
			"SELECT * FROM DIGITALTWINS T WHERE T.$dtId = 'r1'",
			"SELECT * FROM DIGITALTWINS T WHERE T.$dtId = 'r2'",
			"SELECT * FROM DIGITALTWINS T WHERE T.$dtId = 'nope'",
			"SELECT * FROM DIGITALTWINS T WHERE 'f1' = T.$dtId",
		}},
		{"join from one twin", []string{
			"SELECT R FROM DIGITALTWINS F JOIN R RELATED F.contains WHERE F.$dtId = 'f1'",
			"SELECT R FROM DIGITALTWINS F JOIN R RELATED F.contains WHERE F.$dtId = 'f2'",
		}},
		{"filters on both sides", []string{
			"SELECT R.$dtId FROM DIGITALTWINS F JOIN R RELATED F.contains WHERE F.$dtId = 'f1' AND R.name = 'a'",
			"SELECT R.$dtId FROM DIGITALTWINS F JOIN R RELATED F.contains WHERE F.$dtId = 'f1' AND R.name = 'b'",
			"SELECT R.$dtId FROM DIGITALTWINS F JOIN R RELATED F.contains WHERE F.$dtId = 'f2' AND R.name = 'c'",
		}},
		{"relationship property", []string{
			"SELECT R.$dtId FROM DIGITALTWINS F JOIN R RELATED F.contains C WHERE C.since = '2020'",
			"SELECT R.$dtId FROM DIGITALTWINS F JOIN R RELATED F.contains C WHERE C.since = '2021'",
		}},
		{"model pinned", []string{
			"SELECT T.$dtId FROM DIGITALTWINS T WHERE IS_OF_MODEL('dtmi:x:Room;1') AND T.name = 'a'",
			"SELECT T.$dtId FROM DIGITALTWINS T WHERE IS_OF_MODEL('dtmi:x:Space;1') AND T.name = 'a'",
			"SELECT T.$dtId FROM DIGITALTWINS T WHERE IS_OF_MODEL('dtmi:x:Floor;1') AND T.name = 'a'",
			"SELECT T.$dtId FROM DIGITALTWINS T WHERE IS_OF_MODEL('dtmi:x:Room;1') AND T.name = 'b'",
		}},
		{"IN lists", []string{
			"SELECT T.$dtId FROM DIGITALTWINS T WHERE T.$dtId IN ['r1', 'r2']",
			"SELECT T.$dtId FROM DIGITALTWINS T WHERE T.$dtId IN ['r3', 'r3']",
			"SELECT T.$dtId FROM DIGITALTWINS T WHERE T.name IN ['a', 'b', 'c', 'd', 'e']",
			"SELECT T.$dtId FROM DIGITALTWINS T WHERE T.name IN ['one', 'b', 'c', 'd', 'e']",
			"SELECT T.$dtId FROM DIGITALTWINS T WHERE T.name NIN ['one', 'b', 'c', 'd', 'e']",
		}},
		{"projected literals and functions", []string{
			"SELECT T.$dtId, 'x' AS k FROM DIGITALTWINS T WHERE STARTSWITH(T.name, 'o')",
			"SELECT T.$dtId, 'y' AS k FROM DIGITALTWINS T WHERE STARTSWITH(T.name, 't')",
		}},
		{"relationships by source and target", []string{
			"SELECT R.$relationshipId FROM RELATIONSHIPS R WHERE R.$sourceId = 'f1'",
			"SELECT R.$relationshipId FROM RELATIONSHIPS R WHERE R.$sourceId = 'f2'",
			"SELECT R.$relationshipId FROM RELATIONSHIPS R WHERE R.$targetId = 'r2'",
			"SELECT R.$relationshipId FROM RELATIONSHIPS R WHERE R.$targetId = 'r3'",
		}},
		{"match", []string{
			"SELECT R.$dtId FROM DIGITALTWINS MATCH (F)-[:contains]->(R) WHERE F.$dtId = 'f1' ORDER BY R.$dtId DESC",
			"SELECT R.$dtId FROM DIGITALTWINS MATCH (F)-[:contains]->(R) WHERE F.$dtId = 'f2' ORDER BY R.$dtId DESC",
			"SELECT R.$dtId FROM DIGITALTWINS MATCH (F)-[:contains]->(R) WHERE R.$dtId = 'r2' ORDER BY R.$dtId DESC",
		}},
		{"grouped", []string{
			"SELECT T.name, COUNT() FROM DIGITALTWINS T WHERE T.name != 'a' GROUP BY T.name",
			"SELECT T.name, COUNT() FROM DIGITALTWINS T WHERE T.name != 'b' GROUP BY T.name",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(0)
			for round := 0; round < 2; round++ {
				for _, text := range tc.texts {
					want := rowsOf(t, Run, g, text)
					if got := rowsOf(t, c.Run, g, text); got != want {
						t.Fatalf("%s\nthrough the cache:\n%s\nwant:\n%s", text, got, want)
					}
				}
			}
			if tc.name != "grouped" && c.Len() == 0 {
				t.Fatalf("nothing cached")
			}
		})
	}
}

func TestCacheKeys(t *testing.T) {
	g := cacheGraph()
	c := NewCache(0)
	ctx := context.Background()
	for _, text := range []string{
		"SELECT * FROM DIGITALTWINS T WHERE T.$dtId = 'r1'",
		"SELECT * FROM DIGITALTWINS T WHERE T.$dtId = 'r2'",
		"SELECT COUNT() FROM DIGITALTWINS T WHERE T.t > 21",
		"SELECT COUNT() FROM DIGITALTWINS T WHERE T.t > 23",
		"select * from digitaltwins T where T.$dtId = 'r1'",
	} {
		if _, err := c.Run(ctx, g, text, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	// Literal strings share a shape; numbers and keyword case do not.
	if got := c.Len(); got != 4 {
		t.Fatalf("shapes = %d, want 4", got)
	}
	res, err := c.Run(ctx, g, "SELECT COUNT() FROM DIGITALTWINS T WHERE T.t > 23", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Rows[0]); got != `{"COUNT":1}` {
		t.Fatalf("count = %s, want 1", got)
	}

	// Parameters and EXPLAIN are planned each time.
	res, err = c.Run(ctx, g, "SELECT T.$dtId FROM DIGITALTWINS T WHERE T.$dtId = @id", Options{Params: map[string]any{"id": "r3"}})
	if err != nil || len(res.Rows) != 1 || string(res.Rows[0]) != `{"$dtId":"r3"}` {
		t.Fatalf("params: %v %s", err, res.Rows)
	}
	if _, err := c.Run(ctx, g, "EXPLAIN SELECT * FROM DIGITALTWINS T WHERE T.$dtId = 'r1'", Options{}); err != nil {
		t.Fatal(err)
	}
	if got := c.Len(); got != 4 {
		t.Fatalf("shapes = %d after parameters and EXPLAIN, want 4", got)
	}
}

// TestCacheModelsChange checks that a plan resolving IS_OF_MODEL is not
// reused once the models change.
func TestCacheModelsChange(t *testing.T) {
	g := cacheGraph()
	c := NewCache(0)
	text := "SELECT T.$dtId FROM DIGITALTWINS T WHERE IS_OF_MODEL('dtmi:x:Space;1')"
	if got, want := rowsOf(t, c.Run, g, text), rowsOf(t, Run, g, text); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	g.addModel("dtmi:x:Room;1", "dtmi:x:Space;1") // rooms now extend spaces
	want := rowsOf(t, Run, g, text)
	if !strings.Contains(want, "r1") {
		t.Fatalf("rooms are not spaces: %s", want)
	}
	if got := rowsOf(t, c.Run, g, text); got != want {
		t.Fatalf("after the models changed:\n%s\nwant:\n%s", got, want)
	}
}

func TestCacheBounded(t *testing.T) {
	g := cacheGraph()
	c := NewCache(3)
	for i := range 10 {
		text := "SELECT TOP(" + strings.Repeat("1", i+1) + ") T FROM DIGITALTWINS T WHERE T.name = 'a'"
		if _, err := c.Run(context.Background(), g, text, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Len(); got != 3 {
		t.Fatalf("shapes = %d, want 3", got)
	}
}

// TestCacheScriptsSwapped runs every script query, and the same query with
// its string literals in reverse order, through one cache and without it,
// on each script graph: the results must agree.
func TestCacheScriptsSwapped(t *testing.T) {
	graphs := []*memGraph{cacheGraph(), loadExplorerGraph(t, resolveData("docs.graph.json"))}
	c := NewCache(0)
	n := 0
	for _, g := range graphs {
		for _, q := range scriptQueries(t) {
			texts := []string{q}
			if _, lits, ok := shape(q, nil, nil); ok && len(lits) > 1 {
				texts = append(texts, swapLiterals(q, lits))
			}
			for _, text := range texts {
				want, _ := json2(Run(context.Background(), g, text, Options{}))
				got, _ := json2(c.Run(context.Background(), g, text, Options{}))
				if got != want {
					t.Errorf("%s\nthrough the cache:\n%s\nwant:\n%s", text, got, want)
				}
				n++
			}
		}
	}
	if n < 100 || c.Len() < 20 {
		t.Fatalf("%d queries, %d shapes cached", n, c.Len())
	}
}

// swapLiterals returns text with the bodies of its string literals (lits,
// as shape found them) in reverse order.
func swapLiterals(text string, lits []string) string {
	var b strings.Builder
	k := len(lits) - 1
	for i := 0; i < len(text); i++ {
		ch := text[i]
		b.WriteByte(ch)
		if ch == '\'' || ch == '"' {
			n := strings.IndexByte(text[i+1:], ch)
			b.WriteString(lits[k])
			k--
			b.WriteByte(ch)
			i += n + 1
		}
	}
	return b.String()
}

// TestRelease checks that a released page's buffers serve later pages and
// that pages not released keep their rows.
func TestRelease(t *testing.T) {
	g := cacheGraph()
	ctx := context.Background()
	run := func(text string) *Result {
		t.Helper()
		res, err := Run(ctx, g, text, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	kept := run("SELECT * FROM DIGITALTWINS T")
	want, _ := json2(kept, nil)
	for range 50 {
		for _, text := range []string{"SELECT * FROM DIGITALTWINS T WHERE T.$dtId = 'r2'", "SELECT T.name FROM DIGITALTWINS T"} {
			res := run(text)
			before, _ := json2(res, nil)
			again, _ := json2(run(text), nil)
			if before != again {
				t.Fatalf("%s: %s, then %s", text, before, again)
			}
			res.Release()
			res.Release()
			if res.Rows != nil {
				t.Fatal("rows after Release")
			}
		}
	}
	if got, _ := json2(kept, nil); got != want {
		t.Fatalf("a page not released changed:\n%s\nwant:\n%s", got, want)
	}
}
