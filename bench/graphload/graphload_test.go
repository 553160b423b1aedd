package graphload

import (
	"testing"

	"github.com/twinlog/twinlog/bench/stdgraph"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
)

func TestBuild(t *testing.T) {
	cfg := stdgraph.Config{Buildings: 2, Floors: 3, Rooms: 4, Sensors: 2, Seed: 1}
	g, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := g.Snapshot()
	if got, want := s.Position(), uint64(Events(cfg)); got != want {
		t.Fatalf("position=%d, want %d", got, want)
	}
	twins, rels := 0, 0
	for range s.Twins() {
		twins++
	}
	for range s.Relationships() {
		rels++
	}
	if twins != cfg.Twins() || rels != cfg.Relationships() {
		t.Fatalf("twins=%d rels=%d, want %d and %d", twins, rels, cfg.Twins(), cfg.Relationships())
	}
	room, ok := s.Twin("building-1-floor-2-room-3")
	if !ok || room.Model != stdgraph.RoomModel {
		t.Fatalf("room: %v %v", room, ok)
	}
	if p, ok := room.Prop("temperature"); !ok || p.Value == "" {
		t.Fatalf("room temperature: %v %v", p, ok)
	}
	n := 0
	for r := range s.Outgoing("building-1-floor-2-room-3", "hasSensor") {
		if _, ok := s.Twin(r.Target); !ok {
			t.Fatalf("sensor %s missing", r.Target)
		}
		n++
	}
	if n != cfg.Sensors {
		t.Fatalf("hasSensor=%d, want %d", n, cfg.Sensors)
	}
}

// TestDeterministic checks that two generations are the same events.
func TestDeterministic(t *testing.T) {
	cfg := Options{Graph: stdgraph.Config{Buildings: 1, Floors: 2, Rooms: 3, Sensors: 2, Seed: 7}, Batch: 5}
	var a, b []event.Event
	collect := func(dst *[]event.Event) func([]event.Event) error {
		return func(batch []event.Event) error {
			if len(batch) > 5 {
				t.Fatalf("batch of %d, want <= 5", len(batch))
			}
			*dst = append(*dst, batch...)
			return nil
		}
	}
	if err := Generate(cfg, collect(&a)); err != nil {
		t.Fatal(err)
	}
	if err := Generate(cfg, collect(&b)); err != nil {
		t.Fatal(err)
	}
	if len(a) != Events(cfg.Graph) || len(a) != len(b) {
		t.Fatalf("events=%d and %d, want %d", len(a), len(b), Events(cfg.Graph))
	}
	for i := range a {
		if a[i].Position != uint64(i+1) || a[i].Time != b[i].Time || string(a[i].Payload) != string(b[i].Payload) || a[i].Stream != b[i].Stream {
			t.Fatalf("event %d differs: %+v vs %+v", i, a[i], b[i])
		}
	}
	if a[0].Type != twingraph.TypeModelUploaded {
		t.Fatalf("first event %s, want %s", a[0].Type, twingraph.TypeModelUploaded)
	}
}

func BenchmarkBuild(b *testing.B) {
	cfg := stdgraph.Config{Buildings: 10, Seed: 1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(Events(cfg)*b.N)/b.Elapsed().Seconds(), "events/s")
}
