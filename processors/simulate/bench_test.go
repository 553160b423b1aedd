package simulate_test

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twinlog/twinlog/bench"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/handlers"
	"github.com/twinlog/twinlog/processors/simulate"
	"github.com/twinlog/twinlog/projections/timetravel"
	"github.com/twinlog/twinlog/projections/twingraph"
)

const (
	benchTwins  = 1000
	benchPoints = 1_000_000
)

// benchWorld is a main log of benchTwins rooms followed by benchPoints
// telemetry points, as per-point "telemetry" events or as telemetry.batch
// events of 100 points, appended 1,000 points at a time.
func benchWorld(b *testing.B, layout string) (*world, uint64) {
	b.Helper()
	w := &world{}
	eng := w.open(b, simulate.Options{HandlerCacheDir: benchCache(b)})
	ctx := context.Background()
	if _, err := w.twins.AddModels(ctx, "bench", roomModels(b)); err != nil {
		b.Fatal(err)
	}
	for i := range benchTwins {
		if _, _, err := w.twins.PutTwin(ctx, "bench", "r"+strconv.Itoa(i), []byte(`{"$metadata":{"$model":"dtmi:ex:Room;1"}}`), twins.Cond{}); err != nil {
			b.Fatal(err)
		}
	}
	fork := w.graph.Snapshot().Position()
	body := []byte(`{"t":21.5}`)
	batch := make([]event.Event, 0, 1000)
	var payload []byte
	for p := 0; p < benchPoints; {
		batch = batch[:0]
		switch layout {
		case "telemetry":
			for ; len(batch) < 1000; p++ {
				id := "r" + strconv.Itoa(p%benchTwins)
				e, err := twingraph.NewEvent(twingraph.TelemetryStream(id), twingraph.TypeTelemetry, "bench",
					&twingraph.Telemetry{Twin: id, MessageID: strconv.Itoa(p), Body: body})
				if err != nil {
					b.Fatal(err)
				}
				batch = append(batch, e)
			}
		case "batch":
			for range 10 {
				payload = twingraph.AppendTelemetryBatchHeader(payload[:0], 100)
				for range 100 {
					payload = twingraph.AppendTelemetryPoint(payload, &twingraph.TelemetryPoint{Twin: "r" + strconv.Itoa(p%benchTwins), MessageID: strconv.Itoa(p), Body: body})
					p++
				}
				batch = append(batch, event.Event{Stream: twingraph.TelemetryBatchStream(len(batch)), Type: twingraph.TypeTelemetryBatch,
					Actor: "bench", SchemaVersion: twingraph.TelemetryBatchSchemaVersion, Payload: append([]byte(nil), payload...)})
			}
		}
		if _, err := w.log.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	head, _ := w.log.Head(ctx)
	if err := eng.WaitApplied(ctx, head); err != nil {
		b.Fatal(err)
	}
	return w, fork
}

func roomModels(b *testing.B) []json.RawMessage {
	return []json.RawMessage{json.RawMessage(`{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Room;1","@type":"Interface",
		"contents":[{"@type":"Property","name":"temperature","schema":"double"},{"@type":"Telemetry","name":"t","schema":"double"}]}`)}
}

var benchCacheDir struct {
	once sync.Once
	dir  string
}

// benchCache is a compilation cache shared by the benchmarks, so that
// only the first branch compiles the handler.
func benchCache(b *testing.B) string {
	benchCacheDir.once.Do(func() {
		benchCacheDir.dir, _ = os.MkdirTemp("", "simulate-bench-cache")
	})
	return benchCacheDir.dir
}

// BenchmarkReplay replays a window of 1,000,000 recorded telemetry points
// into a branch forked before them, at full speed, with no handler or
// with the trivial example handler on every point; events/s counts
// points.
func BenchmarkReplay(b *testing.B) {
	for _, layout := range []string{"telemetry", "batch"} {
		// Built only when a sub-benchmark of the layout runs.
		b.Run("layout="+layout, func(b *testing.B) {
			benchReplay(b, layout)
		})
	}
}

// benchReplay runs the sub-benchmarks of one layout of BenchmarkReplay.
func benchReplay(b *testing.B, layout string) {
	w, fork := benchWorld(b, layout)
	for _, handler := range []string{"none", "trivial"} {
		b.Run("handler="+handler, func(b *testing.B) {
			req := simulate.Request{At: timetravel.At{Position: fork}, Window: &simulate.Window{}}
			if handler == "trivial" {
				req.Handlers = []simulate.Handler{{Module: module(b, "trivial"), Manifest: &handlers.Manifest{Name: "trivial",
					Triggers: []handlers.Trigger{{Events: []string{"telemetry"}}}}}}
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), bench.CPUTime()
			for range b.N {
				br, err := w.sim.Create(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				if err := br.Wait(ctx); err != nil {
					b.Fatal(err)
				}
				if st := br.Status(); st.Fed != benchPoints {
					b.Fatalf("fed %d points, want %d", st.Fed, benchPoints)
				}
				if err := w.sim.Delete(br.ID()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(benchPoints)*float64(b.N)/time.Since(start).Seconds(), "events/s")
			b.ReportMetric(float64(bench.CPUTime()-cpu0)/float64(benchPoints)/float64(b.N), "cpu-ns/event")
		})
	}
}
