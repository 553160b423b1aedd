package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/node"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/projections/twingraph"
)

func TestReplayVerify(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n, err := node.Open(ctx, node.Config{DataDir: dir, Listen: "127.0.0.1:0", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	svc := n.Twins()
	model := `{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Room;1","@type":"Interface","contents":[
		{"@type":"Property","name":"temperature","schema":"double"}]}`
	if _, err := svc.AddModels(ctx, "a", []json.RawMessage{json.RawMessage(model)}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, _, err := svc.PutTwin(ctx, "a", fmt.Sprint("room-", i), []byte(fmt.Sprintf(`{"$metadata":{"$model":"dtmi:ex:Room;1"},"temperature":%d}`, i)), twins.Cond{}); err != nil {
			t.Fatal(err)
		}
		if i == 10 {
			if _, err := n.Snapshotter().Take(); err != nil {
				t.Fatal(err)
			}
		}
	}
	n.Close()

	out, err := runCLI(t, "replay", "--verify", "--data", dir)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if !strings.Contains(out, "replayed 21 events") || strings.Contains(out, "DIFFERS") || strings.Count(out, "\nok ") != 4 {
		t.Fatalf("output:\n%s\nwant 21 events replayed and 4 comparisons ok", out)
	}

	// A damaged snapshot is reported, with exit code 1.
	snaps, err := twingraph.SnapshotPositions(filepath.Join(dir, "snapshots"))
	if err != nil || len(snaps) == 0 {
		t.Fatalf("snapshots %v, %v", snaps, err)
	}
	path := twingraph.SnapshotPath(filepath.Join(dir, "snapshots"), snaps[len(snaps)-1])
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, "replay", "--verify", "--data", dir)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("verify of a damaged snapshot: %v, want exit 1\n%s", err, out)
	}
	if !strings.Contains(out, "DIFFERS") || !strings.Contains(err.Error(), "unusable") || !strings.Contains(err.Error(), filepath.Base(path)) {
		t.Fatalf("error %v, output:\n%s\nwant the damaged file named", err, out)
	}

	if _, err := runCLI(t, "replay", "--data", dir); err == nil {
		t.Fatal("replay without --verify succeeded")
	}
}

func TestReplayBranch(t *testing.T) {
	ctx := context.Background()
	n, err := node.Open(ctx, node.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- n.Serve(sctx) }()
	defer func() { cancel(); <-served }()
	svc := n.Twins()
	model := `{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Room;1","@type":"Interface","contents":[
		{"@type":"Property","name":"temperature","schema":"double"}]}`
	if _, err := svc.AddModels(ctx, "a", []json.RawMessage{json.RawMessage(model)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.PutTwin(ctx, "a", "room", []byte(`{"$metadata":{"$model":"dtmi:ex:Room;1"}}`), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	fork := n.Engine().Applied()
	for i := range 3 {
		if err := svc.SendTelemetry(ctx, "dev", "room", "", fmt.Sprint("m", i), "", []byte(`{"t":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	client := []string{"--server", n.URL(), "--token", "tok"}
	out, err := runCLI(t, append([]string{"replay", "--branch", "--at", fmt.Sprint(fork)}, client...)...)
	if err != nil {
		t.Fatalf("replay --branch: %v\n%s", err, out)
	}
	if !strings.Contains(out, "branch sim-1 done: 3 events fed") {
		t.Fatalf("output:\n%s\nwant the branch done with 3 events", out)
	}
	out, err = runCLI(t, append([]string{"replay", "--branch", "--handler", "comfort@2"}, client...)...)
	if err == nil || !strings.Contains(err.Error(), "HandlerNotFound") {
		t.Fatalf("replay with an unknown handler: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "replay", "--branch", "--verify"); err == nil {
		t.Fatal("--branch with --verify accepted")
	}
}
