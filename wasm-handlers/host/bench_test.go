package host_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twinlog/twinlog/bench"
	"github.com/twinlog/twinlog/wasm-handlers/abi"
	"github.com/twinlog/twinlog/wasm-handlers/handlertest"
	"github.com/twinlog/twinlog/wasm-handlers/host"
)

var modules map[string][]byte

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "host-wasm")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	files, err := handlertest.Build(dir, map[string]string{"trivial": handlertest.Examples["trivial"], "hostile": handlertest.Examples["hostile"],
		"comfort": handlertest.Examples["comfort"], "average": handlertest.Examples["average"]})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	modules = map[string][]byte{}
	for name, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		modules[name] = b
	}
	os.RemoveAll(dir)
	os.Exit(m.Run())
}

type noState struct{}

func (noState) TwinJSON(string) ([]byte, bool)                                { return nil, false }
func (noState) Property(string, string) ([]byte, bool)                        { return nil, false }
func (noState) Model(string) (string, bool)                                   { return "", false }
func (noState) Relationships(string, string, bool) ([]abi.Relationship, bool) { return nil, false }
func (noState) Query(context.Context, string) ([]byte, error)                 { return nil, nil }

func telemetryBatch(n int) ([]abi.Event, []byte) {
	evs := make([]abi.Event, n)
	in := abi.AppendBatchHeader(nil, n)
	for i := range evs {
		evs[i] = abi.Event{Position: uint64(i + 1), Time: int64(i), Seed: abi.Seed(uint64(i + 1)), Kind: abi.KindTelemetry,
			Type: "telemetry", Twin: fmt.Sprintf("t%d", i%1000), Model: "dtmi:example:Room;1", Payload: []byte(`{"reading":21.5}`)}
		in = abi.AppendEvent(in, &evs[i])
	}
	return evs, in
}

// BenchmarkInvoke measures one guest call over a batch of telemetry events
// with the trivial handler (one host call per event), without the log.
func BenchmarkInvoke(b *testing.B) {
	h, err := host.New(host.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	m, err := h.Compile(ctx, "trivial", modules["trivial"], host.Limits{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close(ctx)
	for _, n := range []int{1, 1024} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			evs, in := telemetryBatch(n)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := bench.CPUTime()
			for i := 0; i < b.N; i++ {
				if _, err := m.Invoke(ctx, noState{}, evs, in); err != nil {
					b.Fatal(err)
				}
			}
			cpu = bench.CPUTime() - cpu
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(n*b.N), "cpu-ns/event")
		})
	}
}

// roomState is one sensor of kind temperature in room r1.
type roomState struct{ noState }

func (roomState) Property(id, name string) ([]byte, bool) {
	switch name {
	case "kind":
		return []byte(`"temperature"`), true
	case "humidity":
		return []byte(`45`), true
	}
	return nil, false
}

func (roomState) Relationships(id, name string, incoming bool) ([]abi.Relationship, bool) {
	return []abi.Relationship{{ID: "in", Name: "isLocatedIn", Peer: "r1"}}, true
}

// BenchmarkInvokeComfort measures the comfort example over a batch of
// sensor telemetry: per event a JSON body, three host reads and a patch.
func BenchmarkInvokeComfort(b *testing.B) {
	h, err := host.New(host.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	m, err := h.Compile(ctx, "comfort", modules["comfort"], host.Limits{Timeout: time.Minute}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close(ctx)
	for _, n := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchComfort(b, m, n) })
	}
}

func benchComfort(b *testing.B, m *host.Module, n int) {
	ctx := context.Background()
	evs, in := telemetryBatch(n)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := bench.CPUTime()
	for i := 0; i < b.N; i++ {
		res, err := m.Invoke(ctx, roomState{}, evs, in)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Outputs) != n {
			b.Fatalf("%d outputs", len(res.Outputs))
		}
	}
	cpu = bench.CPUTime() - cpu
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n*b.N), "cpu-ns/event")
}

// floorState is a floor f1 containing 20 rooms r0..r19, each with a
// comfort, in a building b.
type floorState struct{ noState }

func (floorState) Property(id, name string) ([]byte, bool) {
	if name != "comfort" {
		return nil, false
	}
	return []byte(`87.5`), true
}

func (floorState) Relationships(id, name string, incoming bool) ([]abi.Relationship, bool) {
	switch {
	case incoming && id == "f1":
		return []abi.Relationship{{ID: "c", Name: "contains", Peer: "b"}}, true
	case incoming:
		return []abi.Relationship{{ID: "c", Name: "contains", Peer: "f1"}}, true
	case id == "f1":
		rels := make([]abi.Relationship, 20)
		for i := range rels {
			rels[i] = abi.Relationship{ID: fmt.Sprintf("c%d", i), Name: "contains", Peer: fmt.Sprintf("r%d", i)}
		}
		return rels, true
	}
	return nil, true
}

// BenchmarkInvokeAverage measures the average example recomputing one
// floor from its 20 rooms, once per call (a room's comfort changed): the
// floor hop of the propagation chain, without the log.
func BenchmarkInvokeAverage(b *testing.B) {
	h, err := host.New(host.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	m, err := h.Compile(ctx, "average", modules["average"], host.Limits{Timeout: time.Minute}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close(ctx)
	evs := []abi.Event{{Position: 1, Seed: abi.Seed(1), Kind: abi.KindTwinPatched, Type: "twin.patched", Twin: "r3",
		Model: "dtmi:example:Room;1", Changed: []string{"comfort"}, Payload: []byte(`[{"op":"add","path":"/comfort","value":90}]`)}}
	in := abi.AppendEvent(abi.AppendBatchHeader(nil, 1), &evs[0])
	b.ReportAllocs()
	b.ResetTimer()
	cpu := bench.CPUTime()
	for i := 0; i < b.N; i++ {
		res, err := m.Invoke(ctx, floorState{}, evs, in)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Outputs) != 1 {
			b.Fatalf("%d outputs", len(res.Outputs))
		}
	}
	cpu = bench.CPUTime() - cpu
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/call")
}

// BenchmarkCompile measures validating and compiling the comfort example:
// with no compilation cache (cache=none, the cold part of a deploy), and
// by a host that compiled it before and keeps it (cache=kept: a branch
// running a handler the previous one ran).
func BenchmarkCompile(b *testing.B) {
	ctx := context.Background()
	b.Run("cache=none", func(b *testing.B) {
		for b.Loop() {
			h, err := host.New(host.Config{})
			if err != nil {
				b.Fatal(err)
			}
			m, err := h.Compile(ctx, "comfort", modules["comfort"], host.Limits{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			m.Close(ctx)
			h.Close()
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/compile")
	})
	b.Run("cache=kept", func(b *testing.B) {
		h, err := host.New(host.Config{Keep: 1})
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close()
		for b.Loop() {
			m, err := h.Compile(ctx, "comfort", modules["comfort"], host.Limits{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			m.Close(ctx)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/compile")
	})
}
