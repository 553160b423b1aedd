package twins_test

import (
	"context"
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
