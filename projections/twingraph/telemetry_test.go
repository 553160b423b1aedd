package twingraph_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// telemetryState renders the telemetry records of twins, without their
// stream versions when versions is false.
func telemetryState(g *twingraph.Graph, twins []string, versions bool) string {
	return snapshotTelemetry(g.Snapshot(), twins, versions)
}

// snapshotTelemetry is telemetryState of a snapshot.
func snapshotTelemetry(snap *twingraph.Snapshot, twins []string, versions bool) string {
	var b strings.Builder
	for _, id := range twins {
		rec, ok := snap.Telemetry(id)
		if !ok {
			fmt.Fprintf(&b, "%s: none\n", id)
			continue
		}
		fmt.Fprintf(&b, "%s:", rec.Twin)
		if versions {
			fmt.Fprintf(&b, " v%d", rec.Version)
		}
		fmt.Fprintf(&b, " recent %v\n", rec.Recent)
		for _, v := range rec.Last {
			fmt.Fprintf(&b, "  %q %s %d %q %s\n", v.Component, v.MessageID, v.Time, v.SourceTime, v.Body)
		}
	}
	return b.String()
}

// telemetryPoints returns n points over twins, some with a component or a
// source time, so that some twins get more than RecentMessageIDs messages.
func telemetryPoints(twins []string, n int) []twingraph.TelemetryPoint {
	pts := make([]twingraph.TelemetryPoint, n)
	for i := range pts {
		p := &pts[i]
		p.Twin = twins[(i*3+i/7)%len(twins)]
		if i%3 == 0 {
			p.Component = "hvac"
		}
		if i%4 == 0 {
			p.SourceTime = fmt.Sprintf("2024-05-01T10:00:%02dZ", i%60)
		}
		p.MessageID = fmt.Sprintf("m%d", i)
		p.Body = fmt.Appendf(nil, `{"temperature":%d}`, i)
	}
	return pts
}

// TestTelemetryBatchApply checks that telemetry.batch events leave the same
// last-known telemetry and recent message ids as the equivalent telemetry
// events, whatever the batches, and that only telemetry events move the
// telemetry stream's version.
func TestTelemetryBatchApply(t *testing.T) {
	twins := []string{"t0", "t1", "t2", "t3", "t4", "none"}
	pts := telemetryPoints(twins[:5], 300)
	const t0 = 1_700_000_000_000_000_000
	for _, tc := range []struct {
		name        string
		perEvent    int // points per telemetry.batch event
		eventsApply int // events per Apply
	}{
		{"one point per event", 1, 10},
		{"7 points, 1 event per apply", 7, 1},
		{"7 points, 3 events per apply", 7, 3},
		{"whole batch", len(pts), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Both graphs start with one per-twin telemetry event, as the
			// telemetry API writes.
			first, err := twingraph.NewEvent(twingraph.TelemetryStream("t0"), twingraph.TypeTelemetry, "a",
				twingraph.Telemetry{Twin: "t0", MessageID: "api-1", Body: raw(`{"temperature":-1}`)})
			if err != nil {
				t.Fatal(err)
			}
			first.Position, first.Time = 1, t0
			var single, batched []event.Event
			single = append(single, first)
			batched = append(batched, first)
			for k := 0; k < len(pts); k += tc.perEvent {
				chunk := pts[k:min(k+tc.perEvent, len(pts))]
				tm := t0 + int64(k)*1000
				for _, p := range chunk {
					e, err := twingraph.NewEvent(twingraph.TelemetryStream(p.Twin), twingraph.TypeTelemetry, "a",
						twingraph.Telemetry{Twin: p.Twin, Component: p.Component, MessageID: p.MessageID, SourceTime: p.SourceTime, Body: p.Body})
					if err != nil {
						t.Fatal(err)
					}
					e.Position, e.Time = uint64(len(single)+1), tm
					single = append(single, e)
				}
				batched = append(batched, event.Event{Position: uint64(len(batched) + 1), Time: tm,
					Stream: twingraph.TelemetryBatchStream(k % 3), Type: twingraph.TypeTelemetryBatch, Actor: "a",
					SchemaVersion: twingraph.TelemetryBatchSchemaVersion, Payload: encodeBatch(chunk)})
			}
			gs, gb := twingraph.New(twingraph.Options{}), twingraph.New(twingraph.Options{})
			apply(t, gs, single, 5)
			apply(t, gb, batched, tc.eventsApply)
			want := telemetryState(gs, twins, false)
			if got := telemetryState(gb, twins, false); got != want {
				t.Fatalf("batched telemetry:\n%s\nwant (per point):\n%s", got, want)
			}
			if !strings.Contains(want, "m299") || strings.Count(want, "recent") != 5 {
				t.Fatalf("unexpected reference state:\n%s", want)
			}
			// Nothing the graphs keep views an applied event's payload.
			before := telemetryState(gb, twins, true) + telemetryState(gs, twins, true)
			for _, evs := range [][]event.Event{single, batched} {
				for _, e := range evs[1:] {
					for i := range e.Payload {
						e.Payload[i] = 'X'
					}
				}
			}
			if after := telemetryState(gb, twins, true) + telemetryState(gs, twins, true); after != before {
				t.Fatalf("telemetry changed with the payloads it came from:\n%s\nwas:\n%s", after, before)
			}
			snap := gb.Snapshot()
			if rec, _ := snap.Telemetry("t0"); rec.Version != 1 {
				t.Errorf("t0 version = %d, want 1 (the telemetry event's position)", rec.Version)
			}
			if rec, _ := snap.Telemetry("t1"); rec.Version != 0 {
				t.Errorf("t1 version = %d, want 0: batches do not move it", rec.Version)
			}
			if rec, _ := snap.Telemetry("t0"); len(rec.Recent) != twingraph.RecentMessageIDs {
				t.Errorf("t0 remembers %d message ids, want %d", len(rec.Recent), twingraph.RecentMessageIDs)
			}

			// The snapshot file keeps the telemetry state; the loaded graph
			// goes on like the original.
			loaded, err := twingraph.LoadSnapshot(bytes.NewReader(snapshotBytes(t, gb)), twingraph.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := telemetryState(loaded, twins, true), telemetryState(gb, twins, true); got != want {
				t.Fatalf("loaded:\n%s\nwant:\n%s", got, want)
			}
			more := event.Event{Position: uint64(len(batched) + 1), Time: t0 + 1e12, Stream: twingraph.TelemetryBatchStream(0),
				Type: twingraph.TypeTelemetryBatch, SchemaVersion: twingraph.TelemetryBatchSchemaVersion,
				Payload: encodeBatch(telemetryPoints([]string{"t1", "t9"}, 40))}
			apply(t, loaded, []event.Event{more}, 1)
			apply(t, gb, []event.Event{more}, 1)
			if got, want := telemetryState(loaded, twins, true), telemetryState(gb, twins, true); got != want {
				t.Fatalf("loaded after a batch:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestTelemetrySnapshotsStayUnchanged applies telemetry.batch events that
// bring twins many more points than RecentMessageIDs per Apply, and checks
// that the snapshots published on the way still read as they did.
func TestTelemetrySnapshotsStayUnchanged(t *testing.T) {
	twins := []string{"t0", "t1", "t2"}
	g := twingraph.New(twingraph.Options{})
	type taken struct {
		snap *twingraph.Snapshot
		text string
	}
	var snaps []taken
	pos := uint64(0)
	for k := range 12 {
		// 1 to 3 events of 150 points per Apply: 50 per twin per event.
		var evs []event.Event
		for range 1 + k%3 {
			pos++
			pts := telemetryPoints(twins, 150)
			for i := range pts {
				pts[i].MessageID = fmt.Sprintf("p%d-%s", pos, pts[i].MessageID)
			}
			evs = append(evs, event.Event{Position: pos, Time: int64(pos), Stream: twingraph.TelemetryBatchStream(0),
				Type: twingraph.TypeTelemetryBatch, SchemaVersion: twingraph.TelemetryBatchSchemaVersion, Payload: encodeBatch(pts)})
		}
		apply(t, g, evs, len(evs))
		s := g.Snapshot()
		snaps = append(snaps, taken{s, snapshotTelemetry(s, twins, true)})
	}
	for i, s := range snaps {
		if got := snapshotTelemetry(s.snap, twins, true); got != s.text {
			t.Fatalf("snapshot %d changed after later batches:\n%s\nwas:\n%s", i, got, s.text)
		}
	}
	if rec, _ := g.Snapshot().Telemetry("t0"); len(rec.Recent) != twingraph.RecentMessageIDs ||
		!strings.HasPrefix(rec.Recent[len(rec.Recent)-1], fmt.Sprintf("p%d-", pos)) {
		t.Fatalf("t0 remembers %v", rec.Recent)
	}
}

// TestTelemetryBatchCorrupt checks that a damaged telemetry.batch halts the
// projection instead of being skipped.
func TestTelemetryBatchCorrupt(t *testing.T) {
	payload := encodeBatch(telemetryPoints([]string{"a"}, 3))
	for _, e := range []event.Event{
		{Position: 1, Type: twingraph.TypeTelemetryBatch, SchemaVersion: twingraph.TelemetryBatchSchemaVersion, Payload: payload[:len(payload)-1]},
		{Position: 1, Type: twingraph.TypeTelemetryBatch, SchemaVersion: 9, Payload: payload},
	} {
		g := twingraph.New(twingraph.Options{})
		if err := g.Apply([]event.Event{e}); err == nil {
			t.Errorf("schema %d, %d bytes: applied a damaged batch", e.SchemaVersion, len(e.Payload))
		}
		if _, ok := g.Snapshot().Telemetry("a"); ok || g.Position() != 0 {
			t.Errorf("a failed batch changed the graph")
		}
	}
}
