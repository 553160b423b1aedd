package logtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
)

// BenchEvents returns n events with 100-byte payloads spread over 1,000
// streams: the workload every backend's benchmarks share, so their figures
// compare.
func BenchEvents(n, seed int) []event.Event {
	payload := make([]byte, 100)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{Stream: fmt.Sprintf("twin/%d", (seed+i)%1000), Type: "telemetry", Payload: payload}
	}
	return evs
}

// BenchAppend runs the shared append benchmark: batches of 1, 100 and 1000
// BenchEvents from 1 and 64 concurrent appenders, each sub-benchmark on a
// fresh log from open; one op is one event, reported in events/s.
func BenchAppend(b *testing.B, open func(b *testing.B) eventlog.Log) {
	for _, batch := range []int{1, 100, 1000} {
		for _, appenders := range []int{1, 64} {
			b.Run(fmt.Sprintf("batch=%d/appenders=%d", batch, appenders), func(b *testing.B) {
				l := open(b)
				batches := make([][]event.Event, appenders)
				for i := range batches {
					batches[i] = BenchEvents(batch, i)
				}
				total := int64((b.N + batch - 1) / batch)
				var next atomic.Int64
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for a := 0; a < appenders; a++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= total {
							if _, err := l.Append(context.Background(), batches[a]); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				el := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(total*int64(batch))/el.Seconds(), "events/s")
			})
		}
	}
}
