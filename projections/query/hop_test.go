package query

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// prefetchTwin is a memTwin that counts its Prefetch calls.
type prefetchTwin struct {
	*memTwin
	calls *atomic.Int64
}

func (t prefetchTwin) Prefetch() uint {
	t.calls.Add(1)
	return uint(len(t.id))
}

// prefetchGraph serves memGraph's twins as Prefetchers.
type prefetchGraph struct {
	*memGraph
	calls atomic.Int64
}

func (g *prefetchGraph) Twin(id string) (Twin, bool) {
	t, ok := g.memGraph.twins[id]
	if !ok {
		return nil, false
	}
	return prefetchTwin{t, &g.calls}, true
}

// TestJoinChunks checks that a one-hop JOIN, which binds the twins it
// reaches a chunk at a time, returns what following each relationship in
// turn returns: across chunk boundaries, with targets missing, filtered
// or hidden, and stopped by TOP at every count around a chunk's size.
func TestJoinChunks(t *testing.T) {
	for _, fanout := range []int{0, 1, hopChunk - 1, hopChunk, hopChunk + 1, 3*hopChunk + 5} {
		g := &prefetchGraph{memGraph: newMemGraph()}
		g.addModel("dtmi:x:T;1")
		g.addTwin("hub", "dtmi:x:T;1", map[string]any{})
		var want []string
		for i := range fanout {
			id := fmt.Sprintf("t%03d", i)
			if i%7 != 3 { // every seventh target does not exist
				g.addTwin(id, "dtmi:x:T;1", map[string]any{"n": float64(i)})
				if i%5 != 0 && i%11 != 4 { // filtered out / hidden
					want = append(want, id)
				}
			}
			g.addRel(fmt.Sprintf("r%03d", i), "hub", "has", id, nil)
		}
		g.seal()
		hidden := func(tw Twin) bool {
			n, _ := tw.Property("n")
			f, _ := n.(float64)
			return int(f)%11 != 4 || tw.ID() == "hub"
		}
		run := func(text string) []string {
			t.Helper()
			res, err := Run(context.Background(), g, text, Options{PageSize: MaxPageSize, Visible: hidden})
			if err != nil {
				t.Fatalf("%s: %v", text, err)
			}
			var ids []string
			for _, row := range res.Rows {
				var v struct{ ID string }
				if err := json.Unmarshal(row, &v); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, v.ID)
			}
			return ids
		}
		const join = "SELECT T.$dtId AS ID FROM DIGITALTWINS H JOIN T RELATED H.has WHERE H.$dtId = 'hub' AND T.n % 5 != 0"
		if got := run(join); !slices.Equal(got, want) {
			t.Fatalf("fanout %d: got %v, want %v", fanout, got, want)
		}
		for _, top := range []int{1, hopChunk - 1, hopChunk, hopChunk + 1, 2 * hopChunk} {
			text := strings.Replace(join, "SELECT ", fmt.Sprintf("SELECT TOP(%d) ", top), 1)
			if got, w := run(text), want[:min(top, len(want))]; !slices.Equal(got, w) {
				t.Fatalf("fanout %d, TOP(%d): got %v, want %v", fanout, top, got, w)
			}
		}
		if fanout > 2 && g.calls.Load() == 0 {
			t.Fatalf("fanout %d: no twin was prefetched", fanout)
		}
	}
}
