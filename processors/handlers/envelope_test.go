package handlers_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/processors/handlers"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// TestCausationEnvelope checks that every write of a handler records, in
// its event's envelope, the event it reacts to (CausationID) and the first
// event of the cascade (CorrelationID): a building's average goes back,
// through a floor's and a room's, to a sensor reading.
func TestCausationEnvelope(t *testing.T) {
	n := newMemNode(t, handlers.Options{})
	b := building{floors: 2, rooms: 2}
	b.create(t, n.svc)
	deployExamples(t, n)
	b.send(t, n.svc, 0)
	n.settle(t)

	byPos := map[uint64]event.Event{}
	var written []event.Event
	for from := uint64(1); ; {
		evs, err := n.log.Read(context.Background(), from, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			byPos[e.Position] = e
			if strings.HasPrefix(e.Actor, "handler:") && e.Type == twingraph.TypeTwinPatched {
				written = append(written, e)
			}
		}
		from = evs[len(evs)-1].Position + 1
	}
	buildings := 0
	for _, e := range written {
		cp, err := strconv.ParseUint(e.CausationID, 10, 64)
		cause, ok := byPos[cp]
		if err != nil || !ok || cp >= e.Position {
			t.Fatalf("%s at %d by %s: causation %q names no earlier event", e.Stream, e.Position, e.Actor, e.CausationID)
		}
		want := cause.CorrelationID
		if want == "" {
			want = cause.ID()
		}
		if e.CorrelationID != want {
			t.Fatalf("%s at %d: correlation %q, want %q (its cause %d's)", e.Stream, e.Position, e.CorrelationID, want, cp)
		}
		if e.Stream == twingraph.TwinStream("building") {
			buildings++
			cp, _ := strconv.ParseUint(e.CorrelationID, 10, 64)
			if root := byPos[cp]; root.Type != twingraph.TypeTelemetry {
				t.Fatalf("the building's average at %d correlates to a %s at %d, not a reading", e.Position, root.Type, cp)
			}
		}
	}
	if buildings == 0 {
		t.Fatal("no building average was written")
	}
}
