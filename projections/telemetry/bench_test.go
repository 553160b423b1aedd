package telemetry_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/telemetry"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// genBatches returns telemetry.batch events of 1,000 points: twins
// points per minute, one point per twin per minute, starting at t0.
func genBatches(twins, minutes int) []event.Event {
	var out []event.Event
	pos := uint64(0)
	p := twingraph.AppendTelemetryBatchHeader(nil, 1000)
	n := 0
	flush := func(tm time.Time) {
		pos++
		out = append(out, event.Event{Position: pos, Time: tm.UnixNano(), Stream: "ingest/0", Type: twingraph.TypeTelemetryBatch, SchemaVersion: twingraph.TelemetryBatchSchemaVersion, Payload: p})
		p = twingraph.AppendTelemetryBatchHeader(nil, 1000)
		n = 0
	}
	// Names and bodies are made once: a 30-day history has 43.2 M points.
	names := make([]string, twins)
	for i := range names {
		names[i] = fmt.Sprintf("room%04d", i)
	}
	var bodies [10][]byte
	for i := range bodies {
		bodies[i] = []byte(fmt.Sprintf(`{"temperature":%d.5}`, 15+i))
	}
	for m := range minutes {
		tm := t0.Add(time.Duration(m) * time.Minute)
		for i := range twins {
			p = twingraph.AppendTelemetryPoint(p, &twingraph.TelemetryPoint{Twin: names[i], MessageID: "m", Body: bodies[(i+m)%10]})
			n++
			if n == 1000 {
				flush(tm)
			}
		}
	}
	return out
}

// BenchmarkIngest measures points per second into the Arrow history.
func BenchmarkIngest(b *testing.B) {
	evs := genBatches(1000, 60)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s, _ := telemetry.New(telemetry.Options{})
		for i := 0; i < len(evs); i += 16 {
			if err := s.Apply(evs[i:min(i+16, len(evs))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(evs)*1000*b.N)/b.Elapsed().Seconds(), "points/s")
}

// BenchmarkRangeAggregate measures avg per hour over 30 days for 1,000
// twins at one point per minute (43,200,000 rows). Setup takes a minute;
// run it with -bench RangeAggregate.
func BenchmarkRangeAggregate(b *testing.B) {
	for _, days := range []int{1, 30} {
		b.Run(fmt.Sprintf("twins=1000/days=%d", days), func(b *testing.B) {
			s, _ := telemetry.New(telemetry.Options{Partition: 24 * time.Hour})
			for d := range days {
				evs := genBatches(1000, 1440)
				for i := range evs {
					evs[i].Time += int64(d) * int64(24*time.Hour)
					evs[i].Position += uint64(d * len(evs))
				}
				for i := 0; i < len(evs); i += 64 {
					if err := s.Apply(evs[i:min(i+64, len(evs))]); err != nil {
						b.Fatal(err)
					}
				}
			}
			twins := make([]string, 1000)
			for i := range twins {
				twins[i] = fmt.Sprintf("room%04d", i)
			}
			q := telemetry.Query{Twins: twins, Fields: []string{"temperature"}, From: t0, To: t0.Add(time.Duration(days) * 24 * time.Hour), Bucket: time.Hour, Aggs: []telemetry.Agg{telemetry.Avg}}
			ctx := context.Background()
			if _, err := s.Run(ctx, q); err != nil { // seals the open chunks
				b.Fatal(err)
			}
			// The setup's garbage (43.2 M decoded points) is collected
			// before the measured queries, not during them.
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			var rows int64
			for range b.N {
				res, err := s.Run(ctx, q)
				if err != nil {
					b.Fatal(err)
				}
				rows += res.Rows
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/query")
		})
	}
}
