package node_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/eventlog/filelog"
	"github.com/twinlog/twinlog/engine/node"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// verifyFixture writes a data directory with models, twins,
// relationships, telemetry, a grant and an API key, a snapshot in the
// middle and a tail after it, and returns it with the snapshot's position.
func verifyFixture(t *testing.T) (dir string, snapPos uint64) {
	t.Helper()
	dir = t.TempDir()
	n, stop := start(t, node.Config{DataDir: dir, Token: "admin-t"})
	must := func(method, path, body string, want int) {
		t.Helper()
		if st, b := do(t, httpClient, method, n.URL()+path, "admin-t", body); st != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, st, want, b)
		}
	}
	must("POST", "/models", `[{"@context":"dtmi:dtdl:context;3","@id":"dtmi:t:R;1","@type":"Interface","contents":[
		{"@type":"Property","name":"temperature","schema":"double"},{"@type":"Telemetry","name":"t","schema":"double"},
		{"@type":"Relationship","name":"contains"}]}]`, 201)
	for _, id := range []string{"B1", "R1", "R2"} {
		must("PUT", "/digitaltwins/"+id, `{"$metadata":{"$model":"dtmi:t:R;1"},"temperature":20}`, 200)
	}
	must("PUT", "/digitaltwins/B1/relationships/c1", `{"$targetId":"R1","$relationshipName":"contains"}`, 200)
	must("POST", "/grants", `{"principal":"user:alice","role":"reader","scope":{"kind":"subtree","root":"B1"}}`, 201)
	must("PATCH", "/digitaltwins/R1", `[{"op":"replace","path":"/temperature","value":21}]`, 204)
	var err error
	if snapPos, err = n.Snapshotter().Take(); err != nil {
		t.Fatal(err)
	}
	must("PUT", "/digitaltwins/B1/relationships/c2", `{"$targetId":"R2","$relationshipName":"contains"}`, 200)
	must("PATCH", "/digitaltwins/R2", `[{"op":"replace","path":"/temperature","value":23}]`, 204)
	must("DELETE", "/digitaltwins/B1/relationships/c1", "", 204)
	must("POST", "/apikeys", `{"name":"ci"}`, 201)
	for i := range 3 {
		if err := n.Twins().SendTelemetry(context.Background(), "dev", "R2", "", fmt.Sprint("m", i), "", []byte(`{"t":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	n.Close()
	return dir, snapPos
}

var httpClient = http.DefaultClient

func TestVerify(t *testing.T) {
	ctx := context.Background()
	dir, snapPos := verifyFixture(t)
	var calls int
	rep, err := node.Verify(ctx, dir, node.VerifyOptions{Progress: func(node.VerifyProgress) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		c, _ := rep.First()
		t.Fatalf("a fresh data directory does not verify: %+v", c)
	}
	if rep.Restored != snapPos || rep.Head <= snapPos || calls == 0 {
		t.Fatalf("report %+v after %d progress calls, want restored from %d, head beyond it, progress reported", rep, calls, snapPos)
	}
	var files, projections int
	for _, c := range rep.Comparisons {
		if strings.HasSuffix(c.Against, ".snap") {
			files++
		} else {
			projections++
		}
	}
	if files == 0 || projections != 3 {
		t.Fatalf("comparisons %+v: want the snapshot file and 3 projections at the head", rep.Comparisons)
	}
}

// TestVerifyReportsDifference replaces the snapshot with one of a
// different state at the same position: both the file and the state a
// node would restore from it differ from the rebuild, and the report names
// the twin and the property.
func TestVerifyReportsDifference(t *testing.T) {
	ctx := context.Background()
	dir, snapPos := verifyFixture(t)
	lg, err := filelog.Open(filepath.Join(dir, "log"), filelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := lg.Read(ctx, 1, int(snapPos))
	if err != nil {
		t.Fatal(err)
	}
	g := twingraph.New(twingraph.Options{})
	last := &evs[len(evs)-1]
	if last.Type != twingraph.TypeTwinPatched {
		t.Fatalf("event at the snapshot is %s, want the patch of R1", last.Type)
	}
	last.Payload = []byte(strings.ReplaceAll(string(last.Payload), "21", "99"))
	if err := g.Apply(evs); err != nil {
		t.Fatal(err)
	}
	lg.Close()
	if _, err := twingraph.WriteSnapshotFile(filepath.Join(dir, "snapshots"), g.Snapshot()); err != nil {
		t.Fatal(err)
	}

	rep, err := node.Verify(ctx, dir, node.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Fatal("a snapshot with another state verifies")
	}
	c, _ := rep.First()
	if c.Position != snapPos || !strings.HasSuffix(c.Against, ".snap") || len(c.Differences) != 1 {
		t.Fatalf("first mismatch %+v, want the snapshot file at %d with one difference", c, snapPos)
	}
	if want := `property of twin "R1" "temperature" changed: 21, then 99`; c.Differences[0] != want {
		t.Fatalf("difference %q, want %q", c.Differences[0], want)
	}
	var atHead bool
	for _, c := range rep.Comparisons {
		if c.Projection == "twin graph" && c.Position == rep.Head && len(c.Differences) > 0 {
			atHead = true
		}
	}
	if !atHead {
		t.Fatalf("comparisons %+v: the restored state at the head should differ too", rep.Comparisons)
	}
}

func TestVerifyRefusesServedDir(t *testing.T) {
	dir := t.TempDir()
	n, stop := start(t, node.Config{DataDir: dir, Token: "t"})
	defer func() { stop(); n.Close() }()
	if _, err := node.Verify(context.Background(), dir, node.VerifyOptions{}); !errors.Is(err, node.ErrInUse) {
		t.Fatalf("verify of a served directory: %v, want ErrInUse", err)
	}
	if _, err := node.Verify(context.Background(), filepath.Join(dir, "nothing"), node.VerifyOptions{}); err == nil || errors.Is(err, node.ErrInUse) {
		t.Fatalf("verify of a missing directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nothing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("verify created the missing directory")
	}
}
