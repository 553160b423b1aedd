package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twinlog/twinlog/bench/ingestload"
	"github.com/twinlog/twinlog/engine/node"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/ingest"
)

// BenchmarkNodeIngest measures POST /ingest through a whole node over
// loopback HTTP: durable file log (one fdatasync per group commit), the twin
// graph, telemetry history, routes and handlers all following the log, and
// the load generator (bench/ingestload) in the same process, with batches
// of 1,000 points over 1,000 twins. layout=batch is the node's default
// path, layout=events the per-point one, in the same run.
//
// points/s counts points acknowledged (durable); applied-points/s counts
// them until the twin graph and the telemetry history have applied them
// too, which is what the node sustains.
func BenchmarkNodeIngest(b *testing.B) {
	for _, layout := range ingest.Layouts {
		// Each request waits for its group commit: more clients put more
		// requests in each fsync.
		for _, clients := range []int{8, 32} {
			b.Run(fmt.Sprintf("layout=%s/batch=1000/clients=%d", layout, clients), func(b *testing.B) {
				benchNodeIngest(b, layout, 1000, clients)
			})
		}
	}
}

func benchNodeIngest(b *testing.B, layout ingest.Layout, batch, clients int) {
	ctx := context.Background()
	n, err := node.Open(ctx, node.Config{DataDir: b.TempDir(), Listen: "127.0.0.1:0", Token: "t", IngestLayout: layout,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Serve(sctx) }()
	defer func() {
		cancel()
		<-done
	}()
	const nTwins = 1000
	svc := n.Twins()
	model := `{"@context":"dtmi:dtdl:context;3","@id":"dtmi:bench:Sensor;1","@type":"Interface","contents":[
		{"@type":"Telemetry","name":"temperature","schema":"double"},{"@type":"Telemetry","name":"co2","schema":"integer"}]}`
	if _, err := svc.AddModels(ctx, "bench", []json.RawMessage{json.RawMessage(model)}); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, nTwins)
	for i := range ids {
		ids[i] = fmt.Sprintf("sensor-%d", i)
		if _, _, err := svc.PutTwin(ctx, "bench", ids[i], []byte(`{"$metadata":{"$model":"dtmi:bench:Sensor;1"}}`), twins.Cond{}); err != nil {
			b.Fatal(err)
		}
	}
	cfg := ingestload.Config{URL: n.URL(), Token: n.Token(), Bodies: ingestload.Bodies(32, batch, ids), Points: batch,
		Requests: b.N, Clients: clients}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	res, err := ingestload.Run(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	// What the node sustains: until the projections have caught up.
	if err := n.Engine().WaitApplied(ctx, res.Position); err != nil {
		b.Fatal(err)
	}
	if err := n.Telemetry().Sync(ctx); err != nil {
		b.Fatal(err)
	}
	applied := time.Since(start)
	b.StopTimer()
	res.Report(b)
	b.ReportMetric(float64(res.Points)/applied.Seconds(), "applied-points/s")
}
