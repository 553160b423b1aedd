package handlers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/processors/handlers"
	"github.com/twinlog/twinlog/projections/twingraph"
)

func telemetryBatches(total, size int) [][]event.Event {
	var out [][]event.Event
	for i := 0; i < total; i += size {
		batch := make([]event.Event, 0, size)
		for j := i; j < min(i+size, total); j++ {
			twin := fmt.Sprintf("t%d", j%1000)
			ev, _ := twingraph.NewEvent(twingraph.TelemetryStream(twin), twingraph.TypeTelemetry, "device",
				twingraph.Telemetry{Twin: twin, MessageID: fmt.Sprint(j), Body: []byte(`{"reading":21.5}`)})
			batch = append(batch, ev)
		}
		out = append(out, batch)
	}
	return out
}

// BenchmarkTrivialHandler measures the whole handler path: telemetry
// appended to the log in batches of 1,000, applied by the engine, tailed by
// the handler's feeder, matched, encoded, one guest call per batch of up to
// 1,024 events with one host call per event, result recorded. It reports
// events/s and invocations/s for the handler.
func BenchmarkTrivialHandler(b *testing.B) {
	n := newMemNode(b, handlers.Options{})
	ctx := context.Background()
	n.deploy(b, "trivial", handlers.Manifest{Name: "trivial", Triggers: []handlers.Trigger{{Events: []string{"telemetry"}}}})
	const perOp = 100_000
	batches := telemetryBatches(perOp, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, batch := range batches {
			if _, err := n.log.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		head, _ := n.log.Head(ctx)
		if err := n.mgr.WaitIdle(ctx, head); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	secs := b.Elapsed().Seconds()
	st, _ := n.mgr.Get(ctx, "trivial")
	b.ReportMetric(float64(perOp*b.N)/secs, "events/s")
	b.ReportMetric(float64(st.Stats.Invocations)/secs, "invocations/s")
	b.ReportMetric(st.Stats.LatencyP99us, "p99-us")
}

// BenchmarkDeploy measures deploy-to-live: validate, compile (from a warm
// compilation cache after the first), instantiate, record.
func BenchmarkDeploy(b *testing.B) {
	for _, cache := range []string{"cold", "warm"} {
		b.Run("cache="+cache, func(b *testing.B) {
			dir := b.TempDir()
			n := newMemNode(b, handlers.Options{CacheDir: dir})
			if cache == "warm" {
				n.deploy(b, "comfort", handlers.Manifest{Name: "warmup", Triggers: []handlers.Trigger{{Events: []string{"telemetry"}}}})
			}
			b.ResetTimer()
			var worst time.Duration
			for i := 0; i < b.N; i++ {
				if cache == "cold" {
					b.StopTimer()
					n2 := newMemNode(b, handlers.Options{CacheDir: b.TempDir()})
					b.StartTimer()
					n = n2
				}
				start := time.Now()
				n.deploy(b, "comfort", handlers.Manifest{Name: fmt.Sprintf("h%d", i), Triggers: []handlers.Trigger{{Events: []string{"telemetry"}}}})
				worst = max(worst, time.Since(start))
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/deploy")
			b.ReportMetric(float64(worst.Microseconds()), "max-us")
		})
	}
}
