package query

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine"
)

// FuzzParse checks that no text makes the parser panic or hang, that every
// rejection is a SqlQueryError, and that accepted queries plan and run over a
// small graph within their budget, and give the same through a Cache.
func FuzzParse(f *testing.F) {
	for _, q := range scriptQueries(f) {
		f.Add(q)
	}
	for _, q := range []string{
		"SELECT * FROM DIGITALTWINS", "SELECT", "SELECT * FROM (SELECT * FROM DIGITALTWINS)",
		"SELECT a FROM DIGITALTWINS MATCH (a)-[*1..3]-(b)<-[r:x|y]-(c)", "SELECT [[Group]] FROM DIGITALTWINS WHERE 'a\\'b' = x",
		"SELECT T FROM DIGITALTWINS T WHERE ((((NOT NOT x))))", "select top(3) from digitaltwins -- c\n",
	} {
		f.Add(q)
	}
	g := newMemGraph()
	g.addModel("dtmi:a;1")
	g.addTwin("a", "dtmi:a;1", map[string]any{"x": 1.0, "name": "a"})
	g.addTwin("b", "dtmi:a;1", map[string]any{"x": 2.0})
	g.addRel("r1", "a", "contains", "b", nil)
	g.addRel("r2", "b", "contains", "a", nil)
	g.seal()
	c := NewCache(0)
	f.Fuzz(func(t *testing.T, text string) {
		// Through the cache (a miss, then a hit), a text gives what it
		// gives without.
		want, _ := json2(Run(context.Background(), g, text, Options{}))
		for range 2 {
			if got, _ := json2(c.Run(context.Background(), g, text, Options{})); got != want {
				t.Fatalf("%q through the cache:\n%s\nwant:\n%s", text, got, want)
			}
		}
		st, err := Parse(text)
		if err != nil {
			var e *engine.Error
			if !errors.As(err, &e) || e.Code != CodeQueryError {
				t.Fatalf("Parse(%q) = %v, want a SqlQueryError", text, err)
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := RunStatement(ctx, g, st, Options{}); err != nil {
			var e *engine.Error
			if !errors.As(err, &e) || e.Kind == engine.KindInternal {
				t.Fatalf("Run(%q) = %v", text, err)
			}
		}
	})
}
