package timetravel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twinlog/twinlog/bench"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/timetravel"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// history is a generated log: rooms created, then patched round-robin,
// 1,000 events per append, the log clock moving so that the whole history
// spans days, plus its history checkpoints.
type history struct {
	log   *memlog.Log
	dir   string
	head  uint64
	start time.Time
	step  time.Duration // log time per append of 1,000 events
}

var histories sync.Map // "twins/events" -> *history

// TestMain removes the benchmark histories' checkpoint directories (a
// 100,000-twin history writes 700 MB of them).
func TestMain(m *testing.M) {
	code := m.Run()
	histories.Range(func(_, h any) bool {
		os.RemoveAll(h.(*history).dir)
		return true
	})
	os.Exit(code)
}

const benchSpan = 30 * 24 * time.Hour

func benchHistory(b *testing.B, twins, events int, every uint64) *history {
	key := fmt.Sprintf("%d/%d/%d", twins, events, every)
	if h, ok := histories.Load(key); ok {
		return h.(*history)
	}
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	appends := events / 1000
	step := benchSpan / time.Duration(appends)
	now := start
	l := memlog.New(memlog.Options{Now: func() time.Time { now = now.Add(step); return now }})
	ctx := context.Background()
	docs := loadModels(b)
	ev, err := twingraph.NewEvent(twingraph.ModelsStream, twingraph.TypeModelUploaded, "bench", twingraph.ModelsUploaded{Models: docs})
	if err != nil {
		b.Fatal(err)
	}
	batch := []event.Event{ev}
	flush := func() {
		if _, err := l.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	n := 1
	for i := 0; i < twins && n < events; i++ {
		id := fmt.Sprintf("room%07d", i)
		ev, err := twingraph.NewEvent(twingraph.TwinStream(id), twingraph.TypeTwinCreated, "bench", twingraph.TwinState{
			ID: id, Model: "dtmi:test:Room;1",
			SectionState: twingraph.SectionState{Properties: map[string]json.RawMessage{"name": json.RawMessage(`"` + id + `"`), "temperature": json.RawMessage(`20`)}},
			Components:   map[string]twingraph.SectionState{"thermostat": {}},
		})
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, ev)
		n++
		if len(batch) == 1000 {
			flush()
		}
	}
	for i := 0; n < events; i, n = i+1, n+1 {
		id := fmt.Sprintf("room%07d", i%twins)
		// Each patch of a twin changes its value: the round (i/twins)
		// moves it, so no patch finds the value it sets already there.
		v := json.RawMessage(fmt.Sprintf("%d.%d", 15+(i/twins)%15, i%10))
		batch = append(batch, twingraph.NewPatchedEvent(twingraph.TwinStream(id), "bench", &twingraph.TwinPatched{
			ID: id, Patch: json.RawMessage(`[{"op":"replace","path":"/temperature","value":` + string(v) + `}]`),
			SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"temperature": v}},
		}))
		if len(batch) == 1000 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	dir, err := os.MkdirTemp("", "timetravel-bench")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := timetravel.Backfill(ctx, l, dir, twingraph.Options{}, timetravel.CheckpointOptions{Every: every, MaxFiles: 1 << 20}); err != nil {
		b.Fatal(err)
	}
	head, _ := l.Head(ctx)
	h := &history{log: l, dir: dir, head: head, start: start, step: step}
	histories.Store(key, h)
	return h
}

// BenchmarkAsOf measures an AS OF query (a filter over every twin) at a
// point of a generated history: one day back from the head, or at random
// points, cold (a fresh traveler: load a checkpoint and replay up to
// `every` events) and cached (the view already built).
func BenchmarkAsOf(b *testing.B) {
	sizes := []struct {
		twins, events int
		every         uint64
	}{
		{10_000, 1_000_000, 100_000},
	}
	if os.Getenv("TWINLOG_BENCH_LARGE") != "" {
		// The size: a 100,000-twin graph with 10 M events of
		// history (a few minutes to generate).
		sizes = append(sizes, struct {
			twins, events int
			every         uint64
		}{100_000, 10_000_000, 100_000})
	}
	for _, sz := range sizes {
		name := fmt.Sprintf("twins=%d/events=%d/every=%d", sz.twins, sz.events, sz.every)
		b.Run(name, func(b *testing.B) {
			h := benchHistory(b, sz.twins, sz.events, sz.every)
			ctx := context.Background()
			end := h.start.Add(benchSpan)
			const text = "SELECT COUNT() FROM DIGITALTWINS T WHERE T.temperature > 19"
			dayBack := "'" + end.Add(-24*time.Hour).Format(time.RFC3339) + "'"
			run := func(b *testing.B, tt *timetravel.Traveler, at string) {
				if _, err := tt.Query(ctx, graphquery.Request{Query: text + " AS OF " + at}, timetravel.At{}, graphquery.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			// cold: a fresh traveler for each query; warm: one traveler
			// (default cache) that has answered 32 other random points;
			// cached: the points themselves were queried before.
			for _, mode := range []string{"cold", "warm", "cached"} {
				for _, where := range []string{"1day", "random"} {
					if mode == "warm" && where == "1day" {
						continue
					}
					b.Run("point="+where+"/"+mode, func(b *testing.B) {
						rng := rand.New(rand.NewPCG(1, 2))
						warm, err := timetravel.New(h.log, nil, timetravel.Options{Dirs: []string{h.dir}, CacheEntries: 32, CacheBytes: 4 << 30})
						if err != nil {
							b.Fatal(err)
						}
						points := []string{dayBack}
						if where == "random" {
							points = points[:0]
							for range 16 {
								points = append(points, fmt.Sprint(1+rng.Uint64N(h.head)))
							}
						}
						switch mode {
						case "cached":
							for _, p := range points {
								run(b, warm, p)
							}
						case "warm":
							warm, _ = timetravel.New(h.log, nil, timetravel.Options{Dirs: []string{h.dir}})
							for range 32 {
								run(b, warm, fmt.Sprint(1+rng.Uint64N(h.head)))
							}
							for i := range points {
								points[i] = fmt.Sprint(1 + rng.Uint64N(h.head))
							}
						}
						lat := make([]time.Duration, 0, b.N)
						// Each measured phase starts right after a
						// collection: the history's setup garbage, or the
						// last phase's, is not collected during it.
						runtime.GC()
						b.ReportAllocs()
						b.ResetTimer()
						for i := range b.N {
							tt := warm
							if mode == "cold" {
								b.StopTimer()
								tt, _ = timetravel.New(h.log, nil, timetravel.Options{Dirs: []string{h.dir}})
								b.StartTimer()
							}
							t0 := time.Now()
							run(b, tt, points[i%len(points)])
							lat = append(lat, time.Since(t0))
						}
						b.StopTimer()
						slices.Sort(lat)
						b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
						b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
						b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
					})
				}
			}
		})
	}
}

// BenchmarkReplay measures rebuilding the graph from the start of a
// generated log, the bound of a read with no checkpoint.
func BenchmarkReplay(b *testing.B) {
	h := benchHistory(b, 10_000, 1_000_000, 100_000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := bench.CPUTime()
	for range b.N {
		tt, _ := timetravel.New(h.log, nil, timetravel.Options{})
		if _, err := tt.AsOf(ctx, timetravel.At{Position: h.head}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(h.head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(bench.CPUTime()-cpu0)/float64(h.head)/float64(b.N), "cpu-ns/event")
}
