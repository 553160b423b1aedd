package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/twinlog/twinlog/processors/ingest"
)

// BenchmarkIngestDirect measures Ingest without HTTP.
func BenchmarkIngestDirect(b *testing.B) {
	for _, durable := range []bool{false, true} {
		b.Run(fmt.Sprintf("durable=%v", durable), func(b *testing.B) {
			e := newEnv(b, durable, 1000, ingest.Options{Layout: ingest.LayoutBatch})
			var buf bytes.Buffer
			buf.WriteByte('[')
			for j := range 1000 {
				if j > 0 {
					buf.WriteByte(',')
				}
				fmt.Fprintf(&buf, `{"twinId":"s%d","time":"2024-05-01T10:00:%02dZ","temperature":%d.%d,"co2":%d}`, j, j%60, 15+j%10, j%10, 400+j%200)
			}
			buf.WriteByte(']')
			body := buf.Bytes()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := e.in.Ingest(context.Background(), "", body); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "points/s")
		})
	}
}
