package ingest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/twinlog/twinlog/bench/ingestload"
	"github.com/twinlog/twinlog/processors/ingest"
)

// BenchmarkIngestHTTP runs the POST /ingest load generator (bench/ingestload)
// against the ingester alone (engine, twin graph, HTTP API) with a durable
// file log (fdatasync per group commit). It reports accepted points/s,
// request p99-us and the share of 429 answers. engine/node's
// BenchmarkNodeIngest measures the whole node.
func BenchmarkIngestHTTP(b *testing.B) {
	for _, layout := range ingest.Layouts {
		for _, batch := range []int{1000} {
			for _, clients := range []int{4, 16} {
				b.Run(fmt.Sprintf("layout=%s/batch=%d/clients=%d", layout, batch, clients), func(b *testing.B) {
					benchIngest(b, layout, batch, clients)
				})
			}
		}
	}
}

func benchIngest(b *testing.B, layout ingest.Layout, batch, clients int) {
	const twins = 1000
	e := newEnv(b, true, twins, ingest.Options{Layout: layout})
	ids := make([]string, twins)
	for i := range ids {
		ids[i] = fmt.Sprintf("s%d", i)
	}
	cfg := ingestload.Config{URL: e.srv.URL, Bodies: ingestload.Bodies(32, batch, ids), Points: batch, Requests: b.N, Clients: clients}
	b.ReportAllocs()
	b.SetBytes(int64(len(cfg.Bodies[0])))
	b.ResetTimer()
	res, err := ingestload.Run(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	res.Report(b)
	if got := e.in.Points(); got != uint64(b.N*batch) {
		b.Fatalf("accepted %d points, want %d", got, b.N*batch)
	}
}
