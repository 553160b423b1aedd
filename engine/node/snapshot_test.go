package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/node"
	"github.com/twinlog/twinlog/engine/twins"
)

// state renders every twin (JSON, ETag, stream version) and relationship
// of a node's graph.
func state(n *node.Node) string {
	var b strings.Builder
	snap := n.Twins().Graph().Snapshot()
	for t := range snap.Twins() {
		b.Write(t.AppendJSON(nil))
		fmt.Fprintf(&b, " %s %d\n", t.ETag(), t.Version)
		for r := range snap.Outgoing(t.ID, "") {
			b.Write(r.AppendJSON(nil))
			b.WriteByte('\n')
		}
		for r := range snap.Incoming(t.ID) {
			fmt.Fprintf(&b, "in %s/%s\n", r.Source, r.ID)
		}
	}
	return b.String()
}

// addRoomModel uploads dtmi:ex:Room;1: temperature, name, adjacentTo.
func addRoomModel(t *testing.T, svc *twins.Service) {
	t.Helper()
	model := `{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Room;1","@type":"Interface","contents":[
		{"@type":"Property","name":"temperature","schema":"double"},
		{"@type":"Property","name":"name","schema":"string"},
		{"@type":"Relationship","name":"adjacentTo"}]}`
	if _, err := svc.AddModels(context.Background(), "a", []json.RawMessage{json.RawMessage(model)}); err != nil {
		t.Fatal(err)
	}
}

// putRoom creates room-<i> and, past the first, its relationship adj to
// room-<i-1>.
func putRoom(t *testing.T, svc *twins.Service, i int) {
	t.Helper()
	ctx := context.Background()
	id := fmt.Sprintf("room-%d", i)
	if _, _, err := svc.PutTwin(ctx, "a", id, []byte(fmt.Sprintf(`{"$metadata":{"$model":"dtmi:ex:Room;1"},"name":%q}`, id)), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	if i > 0 {
		if _, _, err := svc.PutRelationship(ctx, "a", id, "adj", []byte(fmt.Sprintf(`{"$targetId":"room-%d","$relationshipName":"adjacentTo"}`, i-1)), twins.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRestartFromSnapshot restarts a node from a snapshot plus a log tail
// and expects exactly the twins it had, and those of a full replay.
func TestRestartFromSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := node.Config{DataDir: dir, Listen: "127.0.0.1:0", Token: "t"}
	n, err := node.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc := n.Twins()
	addRoomModel(t, svc)
	write := func(from, to int) {
		for i := from; i < to; i++ {
			putRoom(t, svc, i)
			if _, err := svc.PatchTwin(ctx, "a", fmt.Sprintf("room-%d", i/2), []byte(fmt.Sprintf(`[{"op":"add","path":"/temperature","value":%d}]`, i)), twins.Cond{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(0, 40)
	snapPos, err := n.Snapshotter().Take()
	if err != nil {
		t.Fatal(err)
	}
	write(40, 60) // the tail
	if err := svc.DeleteRelationship(ctx, "a", "room-59", "adj", twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteTwin(ctx, "a", "room-59", twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	want := state(n)
	head := n.Engine().Applied()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if head <= snapPos {
		t.Fatalf("no tail: head %d, snapshot %d", head, snapPos)
	}

	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	n2, err := node.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), fmt.Sprintf("snapshot loaded\" position=%d", snapPos)) {
		t.Fatalf("restart did not load the snapshot at %d:\n%s", snapPos, logs.String())
	}
	if got := state(n2); got != want {
		t.Fatalf("restart from snapshot + tail differs:\n%s\nwant:\n%s", got, want)
	}
	// Writes continue from the restored state.
	if _, err := n2.Twins().PatchTwin(ctx, "a", "room-1", []byte(`[{"op":"add","path":"/temperature","value":1}]`), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	want = state(n2)
	n2.Close()

	// A full replay (no snapshots) agrees.
	if err := os.RemoveAll(filepath.Join(dir, "snapshots")); err != nil {
		t.Fatal(err)
	}
	n3, err := node.Open(ctx, node.Config{DataDir: dir, Listen: "127.0.0.1:0", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer n3.Close()
	if got := state(n3); got != want {
		t.Fatalf("full replay differs:\n%s\nwant:\n%s", got, want)
	}
}
