package graphquery

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// TestRecycledStateIsNotShared runs queries from several goroutines, each
// releasing its pages, while one page is kept unreleased throughout: the
// executors, seekers and row lists that released queries hand back must
// never show up in another query's rows.
func TestRecycledStateIsNotShared(t *testing.T) {
	a := newGraph(t, 64)
	r := New(a.g, Options{})
	ctx := context.Background()
	join := func(i int) string {
		return fmt.Sprintf("SELECT R FROM DIGITALTWINS T JOIN R RELATED T.next WHERE T.$dtId = 'room-%03d'", i)
	}
	kept, err := r.Run(ctx, Request{Query: join(10)})
	if err != nil || len(kept.Rows) != 1 {
		t.Fatalf("kept: %v, %v", kept, err)
	}
	keptRow := string(kept.Rows[0])
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for n := range 300 {
				i := 1 + (g*300+n)%63
				q := join(i)
				if n%3 == 0 {
					q = fmt.Sprintf("SELECT * FROM DIGITALTWINS T WHERE T.$dtId = 'room-%03d'", i-1)
				}
				res, err := r.Run(ctx, Request{Query: q})
				if err != nil {
					t.Error(err)
					return
				}
				want := fmt.Sprintf(`"$dtId":"room-%03d"`, i-1)
				if len(res.Rows) != 1 || !strings.Contains(string(res.Rows[0]), want) {
					t.Errorf("%s: rows %s, want one with %s", q, res.Rows, want)
					return
				}
				res.Release()
			}
		})
	}
	wg.Wait()
	if string(kept.Rows[0]) != keptRow {
		t.Fatalf("an unreleased page changed:\n%s\nwas\n%s", kept.Rows[0], keptRow)
	}
	// A JOIN's own state is recycled: what is left per query is the
	// Result, the literal's argument and a few closures, a few hundred
	// bytes (about three times as many when each query made its own).
	if raceEnabled {
		return
	}
	const runs = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		res, err := r.Run(ctx, Request{Query: join(20)})
		if err != nil {
			t.Fatal(err)
		}
		res.Release()
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / runs
	t.Logf("%d bytes per JOIN", per)
	if per > 640 {
		t.Errorf("a released JOIN allocates %d bytes, want at most 640", per)
	}
}
