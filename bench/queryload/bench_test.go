package queryload

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twinlog/twinlog/bench"
	"github.com/twinlog/twinlog/bench/graphload"
	"github.com/twinlog/twinlog/bench/stdgraph"
	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/query"
	"github.com/twinlog/twinlog/projections/twingraph"
)

var (
	benchOnce  sync.Once
	benchGraph *twingraph.Graph
	benchCfg   stdgraph.Config
	benchErr   error
)

// standardGraph builds the standard graph in a twingraph.Graph from its
// events: 1/10 size (100 buildings, 101,100 twins) unless
// TWINLOG_BENCH_FULL=1.
func standardGraph(b *testing.B) (*twingraph.Graph, stdgraph.Config) {
	benchOnce.Do(func() {
		benchCfg = stdgraph.Config{Buildings: 100, Seed: 1}
		if os.Getenv("TWINLOG_BENCH_FULL") == "1" {
			benchCfg.Buildings = 1000
		}
		benchGraph, benchErr = graphload.Build(benchCfg)
		// Collect the build's garbage now rather than in the first
		// query kind's timed loop.
		runtime.GC()
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchGraph, benchCfg
}

// BenchmarkQuery runs each query kind through graphquery's Runner (the
// path POST /query takes, minus HTTP) on a twin graph, one query at a
// time, reporting queries/s and the 99th percentile latency.
func BenchmarkQuery(b *testing.B) {
	g, cfg := standardGraph(b)
	r := graphquery.New(g, graphquery.Options{})
	ctx := context.Background()
	for _, q := range Queries(cfg) {
		b.Run(fmt.Sprintf("twins=%d/query=%s", cfg.Twins(), q.Name), func(b *testing.B) {
			b.ReportAllocs()
			lat := make([]time.Duration, 0, b.N)
			i := 0
			cpu0 := bench.CPUTime()
			for b.Loop() {
				t0 := time.Now()
				res, err := r.Run(ctx, graphquery.Request{Query: q.Text(i), PageSize: query.MaxPageSize})
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Rows) != q.Rows {
					b.Fatalf("%s: %d rows, want %d", q.Text(i), len(res.Rows), q.Rows)
				}
				res.Release() // as POST /query does once the answer is written
				i++
			}
			cpu := bench.CPUTime() - cpu0
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
			// The process's CPU time per query (GC included): on a shared
			// machine a steadier figure than the wall-clock ones.
			b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-us/op")
			b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Nanoseconds())/1e3, "p99-us")
		})
	}
}
