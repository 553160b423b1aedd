package twins_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/twinlog/twinlog/bench"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/filelog"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/twins"
)

const benchTwins = 10000

// benchEnv returns a service over log kind ("mem" or "file") with
// benchTwins rooms.
func benchEnv(b *testing.B, kind string) *env {
	var l eventlog.Log
	switch kind {
	case "mem":
		l = memlog.New(memlog.Options{})
	case "file":
		fl, err := filelog.Open(b.TempDir(), filelog.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { fl.Close() })
		l = fl
	}
	e := newEnvOn(b, l)
	data, err := os.ReadFile("../../projections/twingraph/testdata/bench-models.json")
	if err != nil {
		b.Fatal(err)
	}
	var docs []json.RawMessage
	if err := json.Unmarshal(data, &docs); err != nil {
		b.Fatal(err)
	}
	if _, err := e.svc.AddModels(e.ctx, "bench", docs); err != nil {
		b.Fatal(err)
	}
	// Create the rooms concurrently, so group commit batches them.
	var next atomic.Int64
	done := make(chan error, 32)
	for range 32 {
		go func() {
			for {
				i := next.Add(1) - 1
				if i >= benchTwins {
					done <- nil
					return
				}
				body := fmt.Sprintf(`{"$metadata":{"$model":"dtmi:bench:Room;1"},"name":"room %d","area":21.5,"capacity":8,"temperature":21.25,"humidity":45.5,"co2":612,"noise":38.5,"occupancy":3,"comfort":0.82,"booked":false}`, i)
				if _, _, err := e.svc.PutTwin(context.Background(), "bench", "room"+strconv.Itoa(int(i)), []byte(body), twins.Cond{}); err != nil {
					done <- err
					return
				}
			}
		}()
	}
	for range 32 {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	return e
}

// BenchmarkPatchTwin patches one property of random twins from many
// goroutines through engine.Execute: decide, append (durable), apply.
func BenchmarkPatchTwin(b *testing.B) {
	for _, kind := range []string{"mem", "file"} {
		for _, par := range []int{4, 64, 512} {
			b.Run(fmt.Sprintf("log=%s/goroutines=%d", kind, par*2), func(b *testing.B) {
				e := benchEnv(b, kind)
				b.SetParallelism(par)
				b.ReportAllocs()
				cpu0 := bench.CPUTime()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					r := rand.New(rand.NewPCG(rand.Uint64(), 1))
					for pb.Next() {
						id := "room" + strconv.Itoa(r.IntN(benchTwins))
						patch := `[{"op":"replace","path":"/temperature","value":` + strconv.Itoa(15+r.IntN(15)) + `}]`
						if _, err := e.svc.PatchTwin(context.Background(), "bench", id, []byte(patch), twins.Cond{}); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "patches/s")
				b.ReportMetric(float64(bench.CPUTime()-cpu0)/float64(b.N), "cpu-ns/patch")
			})
		}
	}
}

// BenchmarkPatchTwins patches one property of random twins as
// BenchmarkPatchTwin does, in groups through PatchTwins: a few goroutines,
// each waiting for a group of patches at a time.
func BenchmarkPatchTwins(b *testing.B) {
	for _, kind := range []string{"mem", "file"} {
		for _, group := range []int{64, 512} {
			b.Run(fmt.Sprintf("log=%s/goroutines=4/group=%d", kind, group), func(b *testing.B) {
				e := benchEnv(b, kind)
				b.SetParallelism(2)
				b.ReportAllocs()
				cpu0 := bench.CPUTime()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					r := rand.New(rand.NewPCG(rand.Uint64(), 1))
					ps := make([]twins.Patch, 0, group)
					flush := func() bool {
						for _, res := range e.svc.PatchTwins(context.Background(), "bench", ps) {
							if res.Err != nil {
								b.Error(res.Err)
								return false
							}
						}
						ps = ps[:0]
						return true
					}
					for pb.Next() {
						id := "room" + strconv.Itoa(r.IntN(benchTwins))
						patch := `[{"op":"replace","path":"/temperature","value":` + strconv.Itoa(15+r.IntN(15)) + `}]`
						ps = append(ps, twins.Patch{ID: id, Patch: []byte(patch)})
						if len(ps) == group && !flush() {
							return
						}
					}
					if len(ps) > 0 {
						flush()
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "patches/s")
				b.ReportMetric(float64(bench.CPUTime()-cpu0)/float64(b.N), "cpu-ns/patch")
			})
		}
	}
}

// BenchmarkGetTwin reads random twins as ADT JSON.
// BenchmarkGetTwin reads random twins' JSON on every core: api=get into a
// new buffer per read (GetTwin), api=append into each reader's own buffer
// (AppendTwin, what GET /digitaltwins/{id} does).
func BenchmarkGetTwin(b *testing.B) {
	e := benchEnv(b, "mem")
	ids := make([]string, benchTwins)
	for i := range ids {
		ids[i] = "room" + strconv.Itoa(i)
	}
	for _, api := range []string{"get", "append"} {
		b.Run("api="+api, func(b *testing.B) {
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(rand.Uint64(), 2))
				var buf []byte
				var err error
				for pb.Next() {
					id := ids[r.IntN(benchTwins)]
					if api == "get" {
						buf, _, err = e.svc.GetTwin(context.Background(), id)
					} else {
						buf, _, err = e.svc.AppendTwin(context.Background(), buf[:0], id)
					}
					if err != nil || len(buf) == 0 {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
		})
	}
}
