package node_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twinlog/twinlog/engine/node"
	"github.com/twinlog/twinlog/engine/twins"
)

// TestCompactGraph rebuilds a node's graph while writers patch and link
// twins: the graph afterwards holds every acknowledged write, reads as the
// graph before plus those writes, serves writes as before, and agrees with
// a replay of the whole log.
func TestCompactGraph(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n, err := node.Open(ctx, node.Config{DataDir: dir, Listen: "127.0.0.1:0", Token: "t", CompactCheck: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	svc := n.Twins()
	addRoomModel(t, svc)
	const rooms = 300
	for i := range rooms {
		putRoom(t, svc, i)
	}
	before := state(n)

	// Writers run through the rebuild; each records the last value it
	// had acknowledged per room.
	var stop atomic.Bool
	var wg sync.WaitGroup
	acked := make([]map[int]int, 4)
	for w := range acked {
		acked[w] = map[int]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; !stop.Load() || k < 50; k++ {
				room := w + 4*(k%(rooms/4))
				patch := fmt.Sprintf(`[{"op":"add","path":"/temperature","value":%d}]`, k)
				if _, err := svc.PatchTwin(ctx, "a", fmt.Sprintf("room-%d", room), []byte(patch), twins.Cond{}); err != nil {
					t.Error(err)
					return
				}
				acked[w][room] = k
			}
		}()
	}
	st, err := n.CompactGraph(ctx)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if st.Position == 0 {
		t.Fatalf("CompactGraph reports position 0")
	}
	snap := svc.Graph().Snapshot()
	for w := range acked {
		for room, k := range acked[w] {
			tw, ok := snap.Twin(fmt.Sprintf("room-%d", room))
			if !ok {
				t.Fatalf("room-%d is gone", room)
			}
			p, ok := tw.Prop("temperature")
			if !ok || p.Value != fmt.Sprint(k) {
				t.Fatalf("room-%d: temperature %v, acknowledged %d", room, p, k)
			}
		}
	}

	// The rebuilt graph takes writes: a new twin, a relationship to it, a
	// patch, a deletion.
	if _, _, err := svc.PutTwin(ctx, "a", "extra", []byte(`{"$metadata":{"$model":"dtmi:ex:Room;1"},"name":"x"}`), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.PutRelationship(ctx, "a", "room-0", "adj", []byte(`{"$targetId":"extra","$relationshipName":"adjacentTo"}`), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteRelationship(ctx, "a", "room-1", "adj", twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PatchTwin(ctx, "a", "extra", []byte(`[{"op":"add","path":"/temperature","value":1.5}]`), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	if state(n) == before {
		t.Fatal("the writes after the rebuild changed nothing")
	}
	after := state(n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := node.Verify(ctx, dir, node.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		c, _ := rep.First()
		t.Fatalf("replay disagrees: %+v", c)
	}
	n2, err := node.Open(ctx, node.Config{DataDir: dir, Listen: "127.0.0.1:0", Token: "t", CompactCheck: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	if got := state(n2); got != after {
		t.Fatalf("restarted state differs from the compacted node's:\n%s\nwant\n%s", got, after)
	}
}
