package handlers_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twinlog/twinlog/bench"
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

// telemetryBatchEvents returns total points as telemetry.batch events of
// size points each (the ingestion path's layout), in appends of 10 events.
func telemetryBatchEvents(total, size int) [][]event.Event {
	var out [][]event.Event
	var batch []event.Event
	for i := 0; i < total; i += size {
		n := min(size, total-i)
		p := twingraph.AppendTelemetryBatchHeader(nil, n)
		for j := i; j < i+n; j++ {
			p = twingraph.AppendTelemetryPoint(p, &twingraph.TelemetryPoint{Twin: fmt.Sprintf("t%d", j%1000), MessageID: fmt.Sprint(j),
				Body: []byte(`{"reading":21.5}`)})
		}
		batch = append(batch, event.Event{Stream: twingraph.TelemetryBatchStream(0), Type: twingraph.TypeTelemetryBatch, Actor: "device",
			SchemaVersion: twingraph.TelemetryBatchSchemaVersion, Payload: p})
		if len(batch) == 10 {
			out, batch = append(out, batch), nil
		}
	}
	if len(batch) > 0 {
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
	for _, c := range []struct{ layout, rt string }{{"events", "wasm"}, {"events", "native"}, {"batch", "wasm"}, {"batch", "native"}} {
		rt := c.rt
		b.Run("layout="+c.layout+"/runtime="+rt, func(b *testing.B) {
			n := newMemNode(b, handlers.Options{})
			ctx := context.Background()
			n.deploy(b, "trivial", handlers.Manifest{Name: "trivial", Triggers: []handlers.Trigger{{Events: []string{"telemetry"}}}})
			if rt == "native" {
				handlers.SetNative(n.mgr, "trivial", trivialNative)
			}
			const perOp = 100_000
			batches := telemetryBatches(perOp, 1000)
			if c.layout == "batch" {
				batches = telemetryBatchEvents(perOp, 1000)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := bench.CPUTime()
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
			cpu = bench.CPUTime() - cpu
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

// BenchmarkPropagation measures how long a reading takes to reach the
// building: sensors of a building of 10 floors × 20 rooms send telemetry at
// a steady rate (10,000 events/s) through the twin service; comfort
// computes the room's comfort, average the floor's and then the building's
// average. One op is one second of readings. Latencies run from
// SendTelemetry's return to the moment the twin graph applies a building
// patch, so a query sees it (applyClock), and are found in the log after
// the run (propagation):
//
//   - p50-us and p99-us are over building patches: each is traced back
//     along its causes (building ← floor ← room ← reading) to the newest
//     reading it reflects. Handlers coalesce (a floor patch averages every
//     room patch of its batch and names the newest as its cause), so the
//     older readings a patch also reflects waited longer, by up to a batch.
//   - reading-p50-us and reading-p99-us are over readings, each to the first
//     building patch that reflects it by the lower bounds of propagation:
//     never earlier than the truth, and later when a reading changed
//     nothing (a floor average that rounds to its old value) and waited for
//     the next change. followed is the share of readings that reached a
//     building patch before the run ended.
//   - cpu-us/reading is the process's CPU time (user and system, the
//     handlers' cascades included) per reading: steadier than wall time on
//     a shared machine.
//   - comfort-us, floor-us and building-us split the median of p50-us by
//     where it is spent: until the room patch is applied, then the floor's,
//     then the building's.
func BenchmarkPropagation(b *testing.B) {
	const rate = 10_000
	clock := &applyClock{}
	n := newMemNode(b, handlers.Options{}, clock)
	bld := building{floors: 10, rooms: 20}
	bld.create(b, n.svc)
	deployExamples(b, n)
	ctx := context.Background()
	start, _ := n.log.Head(ctx)

	sensors := bld.floors * bld.rooms * len(kinds)
	total := b.N * rate
	accepted := make([]time.Time, total) // by reading
	b.ResetTimer()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	begin, cpu := time.Now(), bench.CPUTime()
	for i := 0; i < total; {
		<-tick.C
		// Catch up to the rate: send what is due by now.
		due := int(time.Since(begin).Seconds()*rate) + 1
		for ; i < min(due, total); i++ {
			s := i % sensors
			f, r, k := s/(bld.rooms*len(kinds)), s/len(kinds)%bld.rooms, s%len(kinds)
			body := []byte(`{"reading":` + strconv.FormatFloat(reading(f, r, k, i/sensors), 'f', -1, 64) + `}`)
			if err := n.svc.SendTelemetry(ctx, "device", sensorID(f, r, k), "", "p"+strconv.Itoa(i), "", body); err != nil {
				b.Fatal(err)
			}
			accepted[i] = time.Now()
		}
	}
	elapsed := time.Since(begin)
	b.StopTimer()
	n.settle(b)
	cpu = bench.CPUTime() - cpu

	var p propagation
	p.accepted = accepted
	p.applied = clock.times()
	n.eachEvent(b, func(e *event.Event) {
		if e.Position > start {
			p.add(e)
		}
	})
	if len(p.latencies) == 0 || len(p.newest) == 0 {
		b.Fatal("no reading reached the building")
	}
	q := func(d []time.Duration, q float64) float64 {
		return float64(d[int(float64(len(d))*q)].Microseconds())
	}
	slices.Sort(p.newest)
	slices.Sort(p.latencies)
	b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
	b.ReportMetric(q(p.newest, 0.5), "p50-us")
	b.ReportMetric(q(p.newest, 0.99), "p99-us")
	b.ReportMetric(q(p.latencies, 0.5), "reading-p50-us")
	b.ReportMetric(q(p.latencies, 0.99), "reading-p99-us")
	b.ReportMetric(float64(len(p.latencies))/float64(total), "followed")
	b.ReportMetric(float64(p.buildings)/elapsed.Seconds(), "building-patches/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(total), "cpu-us/reading")
	for i, unit := range []string{"comfort-us", "floor-us", "building-us"} {
		slices.Sort(p.stages[i])
		b.ReportMetric(q(p.stages[i], 0.5), unit)
	}
}

// applyClock is a projection, applied after the twin graph, that records
// when each event was applied: when a query could first see it.
type applyClock struct {
	mu sync.Mutex
	at []time.Time // by position - 1
}

func (c *applyClock) Apply(batch []event.Event) error {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for range batch {
		c.at = append(c.at, now)
	}
	return nil
}

func (c *applyClock) times() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.at)
}

// propagation follows the readings of BenchmarkPropagation through the log,
// in log order, to the building patches that reflect them.
//
// What a patch reflects is bounded from below by its cause: a room patch
// reflects the reading that caused it; a floor patch was computed from a
// snapshot that holds at least every event up to its cause, so it reflects
// every room patch of its floor up to there; likewise a building patch
// reflects every floor patch up to its cause. A reading's latency ends
// when the first building patch that reflects it in this sense is applied:
// never earlier than the truth, possibly later.
type propagation struct {
	accepted []time.Time // by reading
	applied  []time.Time // by position - 1

	reading map[uint64]int       // telemetry position → reading
	room    map[uint64]int       // room patch position → reading
	cause   map[uint64]uint64    // handler output position → its cause
	floors  [][]roomPatch        // by floor: room patches no floor patch reflects yet
	covered []coveredRoomPatches // floor patches no building patch reflects yet

	latencies []time.Duration // by reading followed
	buildings int
	// newest are, by building patch, the latencies of the newest reading
	// it reflects: the one it names as its root cause; stages split them
	// into the time to its room patch, from there to the floor patch, and
	// from there to the building patch.
	newest []time.Duration
	stages [3][]time.Duration
}

type roomPatch struct {
	pos     uint64
	reading int
}

type coveredRoomPatches struct {
	floorPatch uint64
	readings   []int
}

func (p *propagation) add(e *event.Event) {
	if p.reading == nil {
		p.reading, p.room, p.cause = map[uint64]int{}, map[uint64]int{}, map[uint64]uint64{}
	}
	if e.Type == twingraph.TypeTelemetry {
		var t twingraph.Telemetry
		if twingraph.Decode(e, &t) == nil && strings.HasPrefix(t.MessageID, "p") {
			if i, err := strconv.Atoi(t.MessageID[1:]); err == nil {
				p.reading[e.Position] = i
			}
		}
		return
	}
	handler, outputs := handlers.Outputs(e.Actor)
	if handler == "" {
		return
	}
	causes := make([]uint64, len(outputs))
	for k, o := range outputs {
		causes[k], _ = strconv.ParseUint(o[:strings.IndexByte(o, '.')], 10, 64)
	}
	cause := causes[len(causes)-1] // the newest
	p.cause[e.Position] = cause
	twin := strings.TrimPrefix(e.Stream, "twin/")
	var f, r int
	switch {
	case handler == "comfort":
		if _, err := fmt.Sscanf(twin, "room-%d-%d", &f, &r); err != nil {
			return
		}
		for len(p.floors) <= f {
			p.floors = append(p.floors, nil)
		}
		// One room patch may stand for several readings of the room.
		for _, c := range causes {
			if i, ok := p.reading[c]; ok {
				delete(p.reading, c)
				p.room[e.Position] = i
				p.floors[f] = append(p.floors[f], roomPatch{pos: e.Position, reading: i})
			}
		}
	case handler == "average" && twin == "building":
		p.buildings++
		at := p.applied[e.Position-1]
		n := 0
		for _, c := range p.covered {
			if c.floorPatch > cause {
				p.covered[n] = c
				n++
				continue
			}
			for _, i := range c.readings {
				p.latencies = append(p.latencies, at.Sub(p.accepted[i]))
			}
		}
		p.covered = p.covered[:n]
		// The chain of causes: building ← floor ← room ← reading.
		floor := cause
		room := p.cause[floor]
		if i, ok := p.room[room]; ok {
			t := [4]time.Time{p.accepted[i], p.applied[room-1], p.applied[floor-1], at}
			p.newest = append(p.newest, at.Sub(t[0]))
			for s := range p.stages {
				p.stages[s] = append(p.stages[s], t[s+1].Sub(t[s]))
			}
		}
	case handler == "average":
		if _, err := fmt.Sscanf(twin, "floor-%d", &f); err != nil || f >= len(p.floors) {
			return
		}
		pending := p.floors[f]
		k := 0
		for k < len(pending) && pending[k].pos <= cause {
			k++
		}
		if k == 0 {
			return
		}
		c := coveredRoomPatches{floorPatch: e.Position}
		for _, rp := range pending[:k] {
			c.readings = append(c.readings, rp.reading)
		}
		p.covered = append(p.covered, c)
		p.floors[f] = pending[k:]
	}
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
