package handlers_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/processors/handlers"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/wasm-handlers/abi"
	"github.com/twinlog/twinlog/wasm-handlers/host"
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
// events/s and invocations/s for the handler, and the process's CPU time
// per event. runtime=native runs the same logic as Go in the same path, so
// the ratio of the two is the cost of the sandbox.
func BenchmarkTrivialHandler(b *testing.B) {
	for _, rt := range []string{"wasm", "native"} {
		b.Run("runtime="+rt, func(b *testing.B) {
			n := newMemNode(b, handlers.Options{})
			ctx := context.Background()
			n.deploy(b, "trivial", handlers.Manifest{Name: "trivial", Triggers: []handlers.Trigger{{Events: []string{"telemetry"}}}})
			if rt == "native" {
				handlers.SetNative(n.mgr, "trivial", trivialNative)
			}
			const perOp = 100_000
			batches := telemetryBatches(perOp, 1000)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
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
			cpu = cpuTime() - cpu
			secs := b.Elapsed().Seconds()
			st, _ := n.mgr.Get(ctx, "trivial")
			b.ReportMetric(float64(perOp*b.N)/secs, "events/s")
			b.ReportMetric(float64(st.Stats.Invocations)/secs, "invocations/s")
			b.ReportMetric(st.Stats.LatencyP99us, "p99-us")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(perOp*b.N), "cpu-ns/event")
			if st.Metrics["bytes"] != float64(len(`{"reading":21.5}`)) {
				b.Fatalf("metrics %v", st.Metrics)
			}
		})
	}
}

// trivialNative is examples/trivial in Go.
func trivialNative(_ host.State, batch []abi.Event) (*host.Result, error) {
	start := time.Now()
	res := &host.Result{Metrics: map[string]float64{}}
	for i := range batch {
		res.Metrics["bytes"] = float64(len(batch[i].Payload))
	}
	res.Duration = time.Since(start)
	return res, nil
}

// cpuTime is the process's CPU time, user and system: on a shared machine
// it is steadier than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPropagation measures how long a reading takes to reach the
// building: sensors of a building of 10 floors × 20 rooms send telemetry at
// a steady rate (10,000 events/s) through the twin service; comfort
// computes the room's comfort, average the floor's and then the building's
// average. The latency of a reading is from SendTelemetry's return to the
// moment the building patch it caused is applied to the twin graph, so a
// query sees it; every reading is measured, by following causation ids in
// the log. One op is one second of readings.
func BenchmarkPropagation(b *testing.B) {
	const rate = 10_000
	n := newMemNode(b, handlers.Options{})
	bld := building{floors: 10, rooms: 20}
	bld.create(b, n.svc)
	deployExamples(b, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start, _ := n.log.Head(ctx)

	var mu sync.Mutex
	sent := map[string]time.Time{} // message id → accepted
	var lat []time.Duration
	done := make(chan struct{})
	go func() { // follow each reading to the building
		defer close(done)
		sub, err := n.log.Subscribe(ctx, start+1)
		if err != nil {
			return
		}
		defer sub.Close()
		root := map[uint64]string{} // position → message id of the reading it descends from
		for {
			evs, err := sub.Next(ctx)
			if err != nil {
				return
			}
			for i := range evs {
				e := &evs[i]
				switch {
				case e.Type == twingraph.TypeTelemetry:
					var p twingraph.Telemetry
					if twingraph.Decode(e, &p) == nil {
						root[e.Position] = p.MessageID
					}
				case strings.HasPrefix(e.Actor, "handler:"):
					c := e.Actor[strings.Index(e.Actor, ";c=")+3:]
					c = c[:strings.IndexByte(c, '.')]
					pos, _ := strconv.ParseUint(c, 10, 64)
					id, ok := root[pos]
					if !ok {
						continue
					}
					delete(root, pos)
					if e.Stream != "twin/building" {
						root[e.Position] = id
						continue
					}
					if n.eng.WaitApplied(ctx, e.Position) != nil {
						return
					}
					now := time.Now()
					mu.Lock()
					if t, ok := sent[id]; ok {
						lat = append(lat, now.Sub(t))
						delete(sent, id)
					}
					mu.Unlock()
				}
			}
		}
	}()

	sensors := bld.floors * bld.rooms * len(kinds)
	b.ResetTimer()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	begin := time.Now()
	total := b.N * rate
	for i := 0; i < total; {
		<-tick.C
		// Catch up to the rate: send what is due by now.
		due := int(time.Since(begin).Seconds()*rate) + 1
		for ; i < min(due, total); i++ {
			s := i % sensors
			f, r, k := s/(bld.rooms*len(kinds)), s/len(kinds)%bld.rooms, s%len(kinds)
			id := "p" + strconv.Itoa(i)
			body := []byte(`{"reading":` + strconv.FormatFloat(reading(f, r, k, i/sensors), 'f', -1, 64) + `}`)
			if err := n.svc.SendTelemetry(ctx, "device", sensorID(f, r, k), "", id, "", body); err != nil {
				b.Fatal(err)
			}
			mu.Lock()
			sent[id] = time.Now()
			mu.Unlock()
		}
	}
	elapsed := time.Since(begin)
	// Wait for the readings in flight (each is followed to the building
	// unless a later reading of the same room overtook it in a batch).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		left := len(sent)
		mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	cancel()
	<-done
	if len(lat) == 0 {
		b.Fatal("no reading reached the building")
	}
	slices.Sort(lat)
	b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
	b.ReportMetric(float64(len(lat))/float64(total), "followed")
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
