package twins_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// dump renders every twin and relationship of a graph.
func dump(g *twingraph.Graph) string {
	var b strings.Builder
	snap := g.Snapshot()
	for t := range snap.Twins() {
		b.Write(t.AppendJSON(nil))
		b.WriteByte('\n')
		for r := range snap.Outgoing(t.ID, "") {
			b.Write(r.AppendJSON(nil))
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "version %d\n", t.Version)
	}
	for m := range snap.ModelRecords() {
		fmt.Fprintf(&b, "model %s %d %v\n", m.ID, m.Uploaded, m.Decommissioned)
	}
	return b.String()
}

// TestReplayDeterminism replays the log of a workload into fresh graphs,
// in one batch and event by event, and expects identical twins, metadata
// and ETags.
func TestReplayDeterminism(t *testing.T) {
	e := withModels(t)
	ctx := context.Background()
	e.put("room1", fullRoom)
	e.put("room2", roomBody)
	e.put("s1", sensorBody)
	e.rel("room1", "r1", "hasSensor", "s1")
	e.rel("s1", "loc", "isLocatedIn", "room1")
	e.rel("room1", "adj", "adjacentTo", "room2")
	for i := range 5 {
		if _, err := e.svc.PatchTwin(ctx, "a", "room1", []byte(fmt.Sprintf(`[{"op":"add","path":"/temperature","value":%d},{"op":"add","path":"/tags/k%d","value":"v"}]`, 20+i, i)), twins.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.PatchComponent(ctx, "a", "room1", "thermostat", []byte(`[{"op":"add","path":"/mode","value":"cool"}]`), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PatchTwin(ctx, "a", "room2", []byte(`[{"op":"replace","path":"/$metadata/$model","value":"dtmi:test:MeetingRoom;1"},{"op":"add","path":"/booked","value":true}]`), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteRelationship(ctx, "a", "room1", "adj", twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SendTelemetry(ctx, "a", "s1", "", "m", "", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	e.put("gone", sensorBody)
	if err := e.svc.DeleteTwin(ctx, "a", "gone", twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DecommissionModel(ctx, "a", "dtmi:test:Floor;1", []byte(`[{"op":"replace","path":"/decommissioned","value":true}]`)); err != nil {
		t.Fatal(err)
	}
	want := dump(e.g)

	head, _ := e.log.Head(ctx)
	events, err := e.log.Read(ctx, 1, int(head))
	if err != nil || uint64(len(events)) != head {
		t.Fatalf("read %d of %d: %v", len(events), head, err)
	}
	for _, batch := range []int{len(events), 1, 3} {
		g := twingraph.New(twingraph.Options{})
		for i := 0; i < len(events); i += batch {
			if err := g.Apply(events[i:min(i+batch, len(events))]); err != nil {
				t.Fatal(err)
			}
		}
		if got := dump(g); got != want {
			t.Fatalf("batch=%d: replay differs:\n%s\nwant:\n%s", batch, got, want)
		}
		if g.Position() != head {
			t.Fatalf("position=%d, want %d", g.Position(), head)
		}
	}
}

// fullDump renders dump plus what only restarts can lose: incoming lists,
// deleted twins' stream versions, telemetry state, the model registry and
// the positions.
func fullDump(g *twingraph.Graph, ids ...string) string {
	var b strings.Builder
	b.WriteString(dump(g))
	snap := g.Snapshot()
	fmt.Fprintf(&b, "position %d models %d\n", snap.Position(), snap.ModelsVersion())
	for t := range snap.Twins() {
		for r := range snap.Incoming(t.ID) {
			fmt.Fprintf(&b, "in %s <- %s/%s\n", t.ID, r.Source, r.ID)
		}
		if rec, ok := snap.Telemetry(t.ID); ok {
			fmt.Fprintf(&b, "telemetry %s %d %v %+v\n", t.ID, rec.Version, rec.Recent, rec.Last)
		}
	}
	for _, id := range ids {
		fmt.Fprintf(&b, "stream %s %d\n", id, snap.StreamVersion(id))
	}
	for _, id := range snap.Models().IDs() {
		fmt.Fprintf(&b, "registry %s %v %v\n", id, snap.Models().IsDecommissioned(id), snap.Models().Descendants(id))
		n := 0
		for range snap.TwinsOfModel(id, false) {
			n++
		}
		fmt.Fprintf(&b, "of model %s %d\n", id, n)
	}
	return b.String()
}

// TestSnapshotDeterminism cuts the log of a workload at every position:
// a graph replayed up to the cut, written to a snapshot, loaded and fed the
// rest must equal the graph replayed from scratch.
func TestSnapshotDeterminism(t *testing.T) {
	e := withModels(t)
	ctx := context.Background()
	e.put("room1", fullRoom)
	e.put("room2", roomBody)
	e.put("s1", sensorBody)
	e.rel("room1", "r1", "hasSensor", "s1")
	e.rel("s1", "loc", "isLocatedIn", "room1")
	e.rel("room1", "adj", "adjacentTo", "room2")
	for i := range 3 {
		if _, err := e.svc.PatchTwin(ctx, "a", "room1", []byte(fmt.Sprintf(`[{"op":"add","path":"/temperature","value":%d},{"op":"add","path":"/tags/k%d","value":"v"}]`, 20+i, i)), twins.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.PatchComponent(ctx, "a", "room1", "thermostat", []byte(`[{"op":"add","path":"/mode","value":"cool"}]`), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PatchTwin(ctx, "a", "room2", []byte(`[{"op":"replace","path":"/$metadata/$model","value":"dtmi:test:MeetingRoom;1"},{"op":"add","path":"/booked","value":true}]`), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SendTelemetry(ctx, "a", "s1", "", "m1", "", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	e.put("gone", sensorBody)
	if err := e.svc.DeleteTwin(ctx, "a", "gone", twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DecommissionModel(ctx, "a", "dtmi:test:Floor;1", []byte(`[{"op":"replace","path":"/decommissioned","value":true}]`)); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteRelationship(ctx, "a", "room1", "adj", twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	e.rel("room2", "adj", "adjacentTo", "room1")
	if err := e.svc.SendTelemetry(ctx, "a", "room1", "thermostat", "m2", "2024-01-01T00:00:00Z", []byte(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PatchTwin(ctx, "a", "room1", []byte(`[{"op":"remove","path":"/tags/k0"}]`), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	// A later upload extending an earlier model, and a deleted model.
	if _, err := e.svc.AddModels(ctx, "a", []json.RawMessage{
		json.RawMessage(`{"@context":"dtmi:dtdl:context;3","@id":"dtmi:test:Lab;1","@type":"Interface","extends":"dtmi:test:Room;1"}`),
		json.RawMessage(`{"@context":"dtmi:dtdl:context;3","@id":"dtmi:test:Spare;1","@type":"Interface","extends":"dtmi:test:Thing;1"}`),
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteModel(ctx, "a", "dtmi:test:Spare;1"); err != nil {
		t.Fatal(err)
	}
	e.put("lab", `{"$metadata":{"$model":"dtmi:test:Lab;1"},"thermostat":{"$metadata":{}}}`)
	ids := []string{"room1", "room2", "s1", "gone", "never"}
	want := fullDump(e.g, ids...)

	head, _ := e.log.Head(ctx)
	events, err := e.log.Read(ctx, 1, int(head))
	if err != nil || uint64(len(events)) != head {
		t.Fatalf("read %d of %d: %v", len(events), head, err)
	}
	for cut := range len(events) + 1 {
		g := twingraph.New(twingraph.Options{})
		if cut > 0 {
			if err := g.Apply(events[:cut]); err != nil {
				t.Fatal(err)
			}
		}
		var buf bytes.Buffer
		if _, err := twingraph.WriteSnapshot(&buf, g.Snapshot()); err != nil {
			t.Fatal(err)
		}
		loaded, err := twingraph.LoadSnapshot(&buf, twingraph.Options{})
		if err != nil {
			t.Fatalf("cut=%d: load: %v", cut, err)
		}
		if got, want := fullDump(loaded, ids...), fullDump(g, ids...); got != want {
			t.Fatalf("cut=%d: loaded snapshot differs:\n%s\nwant:\n%s", cut, got, want)
		}
		if cut < len(events) {
			if err := loaded.Apply(events[cut:]); err != nil {
				t.Fatalf("cut=%d: apply tail: %v", cut, err)
			}
		}
		if got := fullDump(loaded, ids...); got != want {
			t.Fatalf("cut=%d: snapshot + tail differs:\n%s\nwant:\n%s", cut, got, want)
		}
	}
}
