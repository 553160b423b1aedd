package handlers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/handlers"
)

// TestHostileHandlers deploys misbehaving handlers beside the examples and
// checks that each is contained and reported while the examples keep
// computing the right values.
func TestHostileHandlers(t *testing.T) {
	n := newMemNode(t, handlers.Options{Retries: 1, RetryInterval: time.Millisecond})
	b := building{floors: 1, rooms: 2}
	b.create(t, n.svc)
	deployExamples(t, n)
	onTelemetry := []handlers.Trigger{{Events: []string{"telemetry"}, Models: []string{sensorModel}}}
	limits := handlers.Limits{TimeoutMs: 200, MemoryPages: 512, MaxOutputs: 100}
	hostile := []struct {
		name, mode string
		wantKind   string // in a report
	}{
		{"loop", "loop", "timeout"},
		{"bomb", "bomb", "trap"},
		{"panic", "panic", "handler error"},
		{"exit", "exit", "trap"},
		{"huge", "huge", "output limit"},
		{"missing", "missing", "output rejected"},
	}
	for _, h := range hostile {
		n.deploy(t, "hostile", handlers.Manifest{Name: h.name, Triggers: onTelemetry, Limits: limits,
			Config: json.RawMessage(`{"mode":"` + h.mode + `"}`)})
	}
	// A 2-cycle: ping copies a floor's score+1 to its building, pong the
	// building's score+1 to its floors.
	n.deploy(t, "hostile", handlers.Manifest{Name: "ping",
		Triggers: []handlers.Trigger{{Events: []string{"twin.patched"}, Models: []string{floorModel}, Properties: []string{"score"}}},
		Config:   json.RawMessage(`{"mode":"cycle","follow":"incoming","relationship":"contains","property":"score"}`)})
	n.deploy(t, "hostile", handlers.Manifest{Name: "pong",
		Triggers: []handlers.Trigger{{Events: []string{"twin.patched"}, Models: []string{buildingModel}, Properties: []string{"score"}}},
		Config:   json.RawMessage(`{"mode":"cycle","follow":"outgoing","relationship":"contains","property":"score"}`)})

	b.send(t, n.svc, 0)
	if _, err := n.svc.PatchTwin(context.Background(), "test", floorID(0), []byte(`[{"op":"add","path":"/score","value":1}]`), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	b.send(t, n.svc, 1)
	n.settle(t)
	b.check(t, n.svc, 1)

	ctx := context.Background()
	for _, h := range hostile {
		st, err := n.mgr.Get(ctx, h.name)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range st.Reports {
			if r.Kind == h.wantKind {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no %q report; reports %+v", h.name, h.wantKind, st.Reports)
		}
		if h.mode == "missing" {
			if st.Stats.OutputErrors == 0 {
				t.Errorf("%s: no output error counted", h.name)
			}
			continue
		}
		if st.Stats.DeadLetters == 0 || len(st.DeadLetters) == 0 {
			t.Errorf("%s: nothing dead-lettered: %+v", h.name, st.Stats)
		} else if st.DeadLetters[0].Error == "" {
			t.Errorf("%s: dead letter without error", h.name)
		}
		if st.Cursor == 0 {
			t.Errorf("%s: cursor did not advance", h.name)
		}
	}
	stops := 0
	for _, name := range []string{"ping", "pong"} {
		st, err := n.mgr.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		stops += int(st.Stats.CascadeStops)
		for _, r := range st.Reports {
			if r.Kind == "cycle" && !strings.Contains(r.Message, "earlier in this cascade") {
				t.Errorf("cycle report %q", r.Message)
			}
		}
	}
	if stops == 0 {
		t.Error("the ping-pong cycle was not stopped")
	}
}
