package query

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twinlog/twinlog/bench/stdgraph"
)

var (
	benchOnce  sync.Once
	benchGraph *memGraph
	benchCfg   stdgraph.Config
)

// standardGraph builds the standard benchmark graph in memory: 1/10 size
// (100 buildings, 101,100 twins) unless TWINLOG_BENCH_FULL=1.
func standardGraph(b *testing.B) *memGraph {
	benchOnce.Do(func() {
		benchCfg = stdgraph.Config{Buildings: 100, Seed: 1}
		if os.Getenv("TWINLOG_BENCH_FULL") == "1" {
			benchCfg.Buildings = 1000
		}
		g := newMemGraph()
		for _, m := range []string{stdgraph.BuildingModel, stdgraph.FloorModel, stdgraph.RoomModel, stdgraph.SensorModel} {
			g.addModel(m)
		}
		err := stdgraph.Generate(benchCfg, func(t stdgraph.Twin) error {
			props := make(map[string]any, len(t.Properties))
			for k, v := range t.Properties {
				if i, ok := v.(int); ok {
					v = float64(i)
				}
				props[k] = v
			}
			g.addTwin(t.ID, t.Model, props)
			return nil
		}, func(r stdgraph.Relationship) error {
			g.addRel(r.ID, r.Source, r.Name, r.Target, nil)
			return nil
		})
		if err != nil {
			panic(err)
		}
		g.seal()
		benchGraph = g
	})
	return benchGraph
}

// runLatency runs query texts in turn b.N times and reports queries/s and
// the 99th percentile latency.
func runLatency(b *testing.B, g Graph, texts []string, wantRows int) {
	b.ReportAllocs()
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		res, err := Run(ctx, g, texts[i%len(texts)], Options{PageSize: MaxPageSize})
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		if wantRows >= 0 && len(res.Rows) != wantRows {
			b.Fatalf("%s: %d rows, want %d", texts[i%len(texts)], len(res.Rows), wantRows)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/el.Seconds(), "queries/s")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Nanoseconds())/1e3, "p99-us")
}

func ids(n int, f func(i int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func BenchmarkLookupByID(b *testing.B) {
	g := standardGraph(b)
	texts := ids(64, func(i int) string {
		return fmt.Sprintf("SELECT * FROM DIGITALTWINS T WHERE T.$dtId = 'building-%d-floor-%d-room-%d'", i%benchCfg.Buildings, i%10, i%20)
	})
	runLatency(b, g, texts, 1)
}

func BenchmarkRoomsWarmerThan(b *testing.B) {
	g := standardGraph(b)
	b.Run(fmt.Sprintf("twins=%d", len(g.order)), func(b *testing.B) {
		runLatency(b, g, []string{"SELECT COUNT() FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, '" + stdgraph.RoomModel + "') AND T.temperature > 25"}, 1)
	})
}

func BenchmarkJoinOneHop(b *testing.B) {
	g := standardGraph(b)
	texts := ids(64, func(i int) string {
		return fmt.Sprintf("SELECT R FROM DIGITALTWINS F JOIN R RELATED F.contains WHERE F.$dtId = 'building-%d-floor-%d'", i%benchCfg.Buildings, i%10)
	})
	runLatency(b, g, texts, 20)
}

func BenchmarkMatchBuildingToSensors(b *testing.B) {
	g := standardGraph(b)
	texts := ids(16, func(i int) string {
		return fmt.Sprintf("SELECT S.$dtId FROM DIGITALTWINS MATCH (B)-[:contains]->(F)-[:contains]->(R)-[:hasSensor]->(S) WHERE B.$dtId = 'building-%d'", i%benchCfg.Buildings)
	})
	runLatency(b, g, texts, 800)
}

func BenchmarkMatchVariableHops(b *testing.B) {
	g := standardGraph(b)
	texts := ids(16, func(i int) string {
		return fmt.Sprintf("SELECT COUNT() FROM DIGITALTWINS MATCH (B)-[:contains|hasSensor*3]->(S) WHERE B.$dtId = 'building-%d'", i%benchCfg.Buildings)
	})
	runLatency(b, g, texts, 1)
}

func BenchmarkParse(b *testing.B) {
	text := "SELECT Floor, Room FROM DIGITALTWINS MATCH (Floor)-[:contains|isAssociatedWith*3..5]->(Room) WHERE Floor.$dtId = 'thermostat-15' AND Room.temperature > 50 AND IS_OF_MODEL(Room, 'dtmi:x:Room;1')"
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Parse(text); err != nil {
			b.Fatal(err)
		}
	}
}
