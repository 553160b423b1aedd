package handlers_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/processors/handlers"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/wasm-handlers/abi"
	"github.com/twinlog/twinlog/wasm-handlers/host"
)

// appendBatch appends one telemetry.batch event of pts, as the ingestion
// path writes it, and returns its position.
func appendBatch(t testing.TB, n *node, pts []twingraph.TelemetryPoint) uint64 {
	t.Helper()
	payload := twingraph.AppendTelemetryBatchHeader(nil, len(pts))
	for i := range pts {
		payload = twingraph.AppendTelemetryPoint(payload, &pts[i])
	}
	res, err := n.eng.Append(context.Background(), []event.Event{{Stream: twingraph.TelemetryBatchStream(0),
		Type: twingraph.TypeTelemetryBatch, Actor: "device", SchemaVersion: twingraph.TelemetryBatchSchemaVersion, Payload: payload}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Last
}

// sendBatch sends round i of b's telemetry as one telemetry.batch.
func (b building) sendBatch(t testing.TB, n *node, i int) uint64 {
	t.Helper()
	var pts []twingraph.TelemetryPoint
	for f := range b.floors {
		for r := range b.rooms {
			for k := range kinds {
				pts = append(pts, twingraph.TelemetryPoint{Twin: sensorID(f, r, k), MessageID: fmt.Sprintf("m%d", i),
					Body: fmt.Appendf(nil, `{"reading":%v}`, reading(f, r, k, i))})
			}
		}
	}
	return appendBatch(t, n, pts)
}

// TestTelemetryBatchPoints checks that a handler gets one telemetry event
// per selected point of a telemetry.batch, in order, across jobs smaller
// than the batch, each with its own seed, and that every point's outputs
// are written.
func TestTelemetryBatchPoints(t *testing.T) {
	n := newMemNode(t, handlers.Options{})
	b := building{floors: 1, rooms: 3}
	b.create(t, n.svc)
	n.deploy(t, "trivial", handlers.Manifest{Name: "echo", Version: "1", Limits: handlers.Limits{MaxBatch: 5},
		Triggers: []handlers.Trigger{{Events: []string{"telemetry"}, Models: []string{sensorModel}}}})
	var (
		mu  sync.Mutex
		got []abi.Event
	)
	// For each point: a telemetry message to the sensor's room and a
	// patch of the sensor's kind.
	handlers.SetNative(n.mgr, "echo", func(_ host.State, batch []abi.Event) (*host.Result, error) {
		mu.Lock()
		got = append(got, batch...)
		mu.Unlock()
		res := &host.Result{}
		for i, e := range batch {
			room := "room-0-" + e.Twin[len("sensor-0-"):len("sensor-0-")+1]
			res.Outputs = append(res.Outputs,
				host.Output{Kind: host.OutputTelemetry, Cause: i, Seq: 0, Twin: room, Body: e.Payload},
				host.Output{Kind: host.OutputPatch, Cause: i, Seq: 1, Twin: e.Twin,
					Body: fmt.Appendf(nil, `[{"op":"replace","path":"/kind","value":"%d"}]`, e.Seed%1000)})
		}
		return res, nil
	})

	type want struct {
		pos  uint64
		twin string
		body string
	}
	var wants []want
	for round := range 3 {
		var pts []twingraph.TelemetryPoint
		for r := range b.rooms {
			for k := range kinds {
				pts = append(pts, twingraph.TelemetryPoint{Twin: sensorID(0, r, k), MessageID: fmt.Sprintf("m%d", round),
					Body: fmt.Appendf(nil, `{"reading":%d}`, round*100+r*10+k)})
			}
			// Not selected: a room, and a twin that does not exist.
			pts = append(pts, twingraph.TelemetryPoint{Twin: roomID(0, r), Body: []byte(`{"temperature":1}`)},
				twingraph.TelemetryPoint{Twin: "ghost", Body: []byte(`{"reading":1}`)})
		}
		pos := appendBatch(t, n, pts)
		for _, p := range pts {
			if strings.HasPrefix(p.Twin, "sensor-") {
				wants = append(wants, want{pos, p.Twin, string(p.Body)})
			}
		}
	}
	n.settle(t)

	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(wants) {
		t.Fatalf("handler got %d events, want %d", len(got), len(wants))
	}
	seeds := map[uint64]bool{}
	for i, w := range wants {
		e := got[i]
		if e.Position != w.pos || e.Twin != w.twin || string(e.Payload) != w.body || e.Type != "telemetry" ||
			e.Kind != abi.KindTelemetry || e.Model != sensorModel {
			t.Errorf("event %d = %d %s %s %q %s, want %d %s telemetry %q %s", i, e.Position, e.Twin, e.Type, e.Payload, e.Model,
				w.pos, w.twin, w.body, sensorModel)
		}
		seeds[e.Seed] = true
	}
	if len(seeds) != len(wants) {
		t.Errorf("%d distinct seeds for %d points", len(seeds), len(wants))
	}
	// Every point's telemetry output reached its room: message ids of
	// different points of a batch differ.
	perRoom := map[string]int{}
	n.eachEvent(t, func(e *event.Event) {
		if e.Type == twingraph.TypeTelemetry && strings.HasPrefix(e.Actor, "handler:echo@") {
			perRoom[strings.TrimPrefix(e.Stream, "telemetry/")]++
		}
	})
	for r := range b.rooms {
		if c := perRoom[roomID(0, r)]; c != 3*len(kinds) {
			t.Errorf("%s got %d telemetry messages from the handler, want %d", roomID(0, r), c, 3*len(kinds))
		}
	}
	// Per twin, the last point's patch is the last applied.
	last := got[len(got)-len(kinds)*b.rooms:]
	for _, e := range last {
		if v := prop(t, n.svc, e.Twin, "kind"); v != fmt.Sprint(e.Seed%1000) {
			t.Errorf("%s kind = %v, want %d (its last point's)", e.Twin, v, e.Seed%1000)
		}
	}
	st, _ := n.mgr.Get(context.Background(), "echo")
	if st == nil || st.Stats.Outputs != uint64(2*len(wants)) || st.Stats.Batches < uint64(len(wants)/5) {
		t.Fatalf("status: %+v", st)
	}
}
