package handlers_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/processors/handlers"
	"github.com/twinlog/twinlog/wasm-handlers/abi"
	"github.com/twinlog/twinlog/wasm-handlers/host"
)

// TestMergedWrites checks how a handler's consecutive patches of one twin
// reach the log: as one event naming every output when the merged patch is
// accepted, and one by one, each accepted or rejected on its own, when it
// is not.
func TestMergedWrites(t *testing.T) {
	n := newMemNode(t, handlers.Options{})
	building{floors: 1, rooms: 1}.create(t, n.svc)
	const room = "room-0-0"
	n.deploy(t, "trivial", handlers.Manifest{Name: "writer", Version: "1",
		Triggers: []handlers.Trigger{{Events: []string{"telemetry"}, Models: []string{sensorModel}}}})
	// Each reading patches the room three times: temperature and noise to
	// its position, and in between comfort to its body (valid or not).
	handlers.SetNative(n.mgr, "writer", func(_ host.State, batch []abi.Event) (*host.Result, error) {
		res := &host.Result{}
		for i := range batch {
			pos := strconv.FormatUint(batch[i].Position, 10)
			for seq, body := range []string{
				`[{"op":"add","path":"/temperature","value":` + pos + `}]`,
				`[{"op":"add","path":"/comfort","value":` + string(batch[i].Payload) + `}]`,
				` [ {"op":"add","path":"/noise","value":` + pos + `} ] `,
			} {
				res.Outputs = append(res.Outputs, host.Output{Kind: host.OutputPatch, Cause: i, Seq: seq, Twin: room, Body: []byte(body)})
			}
		}
		return res, nil
	})
	ctx := context.Background()
	tests := []struct {
		name     string
		body     string
		comfort  any
		writes   [][]string // outputs of each event written, by cause's sequence number
		rejected uint64
	}{
		{name: "accepted", body: `75`, comfort: 75.0, writes: [][]string{{"0", "1", "2"}}},
		{name: "rejected", body: `"high"`, comfort: 75.0, writes: [][]string{{"0"}, {"2"}}, rejected: 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, _ := n.log.Head(ctx)
			if err := n.svc.SendTelemetry(ctx, "device", sensorID(0, 0, 0), "", tt.name, "", []byte(tt.body)); err != nil {
				t.Fatal(err)
			}
			n.settle(t)
			var reading uint64
			var writes [][]string
			n.eachEvent(t, func(e *event.Event) {
				switch {
				case e.Position <= from:
				case e.Stream == "telemetry/"+sensorID(0, 0, 0):
					reading = e.Position
				case e.Stream == "twin/"+room:
					name, outputs := handlers.Outputs(e.Actor)
					if name != "writer" {
						t.Errorf("room patched by %q", e.Actor)
					}
					var seqs []string
					for _, o := range outputs {
						seqs = append(seqs, o[len(o)-1:])
						if cause, _, _ := strings.Cut(o, "."); cause != strconv.FormatUint(reading, 10) {
							t.Errorf("output %s, want a cause of %d", o, reading)
						}
					}
					writes = append(writes, seqs)
				}
			})
			if !slices.EqualFunc(writes, tt.writes, slices.Equal) {
				t.Errorf("writes %v, want %v", writes, tt.writes)
			}
			if got := prop(t, n.svc, room, "comfort"); got != tt.comfort {
				t.Errorf("comfort = %v, want %v", got, tt.comfort)
			}
			if got := prop(t, n.svc, room, "noise"); got != float64(reading) {
				t.Errorf("noise = %v, want %d", got, reading)
			}
			st, err := n.mgr.Get(ctx, "writer")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := st.Stats.OutputErrors, tt.rejected; got != want {
				t.Errorf("output errors %d, want %d", got, want)
			}
			if got, want := st.Stats.Outputs+st.Stats.OutputErrors, uint64(3*(i+1)); got != want {
				t.Errorf("outputs and errors %d, want %d", got, want)
			}
		})
	}
}
