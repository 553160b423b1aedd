package twingraph_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// gen builds the events of the standard benchmark graph shape (buildings ×
// 10 floors × 20 rooms × 4 sensors) without the service, as a replay would
// deliver them.
type gen struct {
	t      testing.TB
	pos    uint64
	events []event.Event
}

func (g *gen) add(stream, typ string, p any) {
	e, err := twingraph.NewEvent(stream, typ, "bench", p)
	if err != nil {
		g.t.Fatal(err)
	}
	g.pos++
	e.Position = g.pos
	e.Time = 1_700_000_000_000_000_000 + int64(g.pos)*1000
	g.events = append(g.events, e)
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func (g *gen) twin(id, model string, props map[string]json.RawMessage) {
	g.add(twingraph.TwinStream(id), twingraph.TypeTwinCreated, &twingraph.TwinState{ID: id, Model: model,
		SectionState: twingraph.SectionState{Properties: props}})
}

func (g *gen) rel(src, id, name, target string) {
	g.add(twingraph.TwinStream(src), twingraph.TypeRelationshipCreated, &twingraph.RelationshipState{
		Source: src, ID: id, Name: name, Target: target, Properties: raw("{}")})
	g.add(twingraph.TwinStream(target), twingraph.TypeRelationshipLinked, &twingraph.RelationshipRef{
		Source: src, ID: id, Name: name, Target: target})
}

func benchModels(t testing.TB) []json.RawMessage {
	data, err := os.ReadFile("testdata/bench-models.json")
	if err != nil {
		t.Fatal(err)
	}
	var docs []json.RawMessage
	if err := json.Unmarshal(data, &docs); err != nil {
		t.Fatal(err)
	}
	return docs
}

// buildingGraph returns the events of n buildings and the twin and
// relationship counts.
func buildingGraph(t testing.TB, n int) (events []event.Event, twins, rels int) {
	g := &gen{t: t}
	g.add(twingraph.ModelsStream, twingraph.TypeModelUploaded, &twingraph.ModelsUploaded{Models: benchModels(t)})
	for b := range n {
		bid := fmt.Sprintf("b%d", b)
		g.twin(bid, "dtmi:bench:Building;1", map[string]json.RawMessage{"name": raw(`"` + bid + `"`)})
		twins++
		for f := range 10 {
			fid := fmt.Sprintf("%s-f%d", bid, f)
			g.twin(fid, "dtmi:bench:Floor;1", map[string]json.RawMessage{"name": raw(`"` + fid + `"`), "level": raw(fmt.Sprint(f))})
			twins++
			g.rel(bid, "contains-"+fid, "contains", fid)
			rels++
			if f > 0 {
				g.rel(fid, "adjacentTo", "adjacentTo", fmt.Sprintf("%s-f%d", bid, f-1))
				rels++
			}
			for r := range 20 {
				rid := fmt.Sprintf("%s-r%d", fid, r)
				g.twin(rid, "dtmi:bench:Room;1", map[string]json.RawMessage{
					"name": raw(`"` + rid + `"`), "area": raw("21.5"), "capacity": raw("8"), "temperature": raw("21.25"),
					"humidity": raw("45.5"), "co2": raw("612"), "noise": raw("38.5"), "occupancy": raw("3"),
					"comfort": raw("0.82"), "booked": raw("false")})
				twins++
				g.rel(fid, "contains-"+rid, "contains", rid)
				rels++
				if r > 0 {
					g.rel(rid, "adjacentTo", "adjacentTo", fmt.Sprintf("%s-r%d", fid, r-1))
					rels++
				}
				for s := range 4 {
					sid := fmt.Sprintf("%s-s%d", rid, s)
					g.twin(sid, "dtmi:bench:Sensor;1", map[string]json.RawMessage{"kind": raw(`"temperature"`), "value": raw("21.25")})
					twins++
					g.rel(rid, "hasSensor-"+sid, "hasSensor", sid)
					g.rel(sid, "isLocatedIn", "isLocatedIn", rid)
					rels += 2
				}
			}
		}
	}
	return g.events, twins, rels
}

func apply(t testing.TB, g *twingraph.Graph, events []event.Event, batch int) {
	for i := 0; i < len(events); i += batch {
		if err := g.Apply(events[i:min(i+batch, len(events))]); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGraphQueries(t *testing.T) {
	events, nt, nr := buildingGraph(t, 2)
	g := twingraph.New(twingraph.Options{})
	before := g.Snapshot()
	apply(t, g, events, 1000)
	snap := g.Snapshot()
	if before.Position() != 0 {
		t.Fatalf("old snapshot moved")
	}
	if _, ok := before.Twin("b0"); ok {
		t.Fatalf("old snapshot sees new twins")
	}
	count := 0
	for range snap.Twins() {
		count++
	}
	if count != nt {
		t.Fatalf("twins=%d, want %d", count, nt)
	}
	rooms := 0
	for range snap.TwinsOfModel("dtmi:bench:Room;1", true) {
		rooms++
	}
	if rooms != 2*10*20 {
		t.Fatalf("rooms=%d", rooms)
	}
	out := 0
	for r := range snap.Outgoing("b0-f1-r1", "") {
		if r.Source != "b0-f1-r1" {
			t.Fatalf("outgoing of wrong source: %+v", r)
		}
		out++
	}
	if out != 5 { // 4 hasSensor + adjacentTo
		t.Fatalf("outgoing=%d", out)
	}
	n := 0
	for range snap.Outgoing("b0-f1-r1", "hasSensor") {
		n++
	}
	if n != 4 {
		t.Fatalf("hasSensor=%d", n)
	}
	in := 0
	for r := range snap.Incoming("b0-f1-r1") {
		if r.Target != "b0-f1-r1" {
			t.Fatalf("incoming of wrong target: %+v", r)
		}
		in++
	}
	if in != 6 { // contains + adjacentTo from r2 + 4 isLocatedIn
		t.Fatalf("incoming=%d", in)
	}
	// Outgoing of "b0-f1-r1" must not include "b0-f1-r10".
	if _, ok := snap.Relationship("b0-f1-r1", "adjacentTo"); !ok {
		t.Fatal("relationship lookup")
	}
	total := 0
	for tw := range snap.Twins() {
		for range snap.Outgoing(tw.ID, "") {
			total++
		}
	}
	if total != nr {
		t.Fatalf("relationships=%d, want %d", total, nr)
	}
}

func TestETag(t *testing.T) {
	seen := map[string]bool{}
	for pos := uint64(1); pos < 10000; pos++ {
		e := twingraph.ETag(pos)
		if seen[e] || len(e) != 3+36+1 {
			t.Fatalf("ETag(%d)=%s", pos, e)
		}
		seen[e] = true
	}
}

// BenchmarkGraphLoad applies the standard graph shape and reports the heap
// per twin and per relationship of the live graph.
func BenchmarkGraphLoad(b *testing.B) {
	for _, n := range []int{10} {
		b.Run(fmt.Sprintf("buildings=%d", n), func(b *testing.B) {
			events, nt, nr := buildingGraph(b, n)
			b.ReportAllocs()
			var heap uint64
			for b.Loop() {
				runtime.GC()
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				g := twingraph.New(twingraph.Options{})
				apply(b, g, events, 4096)
				runtime.GC()
				runtime.ReadMemStats(&m1)
				heap = m1.HeapAlloc - m0.HeapAlloc
				runtime.KeepAlive(g)
			}
			b.ReportMetric(float64(len(events))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(heap)/float64(nt+nr), "heapB/object")
			// Extrapolated to the standard graph, which has the same
			// shape, so the same mix of twins and relationships.
			b.ReportMetric(float64(heap)/float64(nt)*1011000/1e9, "GB@1.011Mtwins")
		})
	}
}

func TestAppendTime(t *testing.T) {
	for _, ns := range []int64{0, 1, -1, 1_700_000_000_123_456_789, 951_782_400_000_000_000 /* 2000-02-29 */, -9_000_000_000_000_000_000, 4_102_444_800_000_000_000, -86_400_000_000_001} {
		want := time.Unix(0, ns).UTC().Format(twingraph.TimeLayout)
		if got := twingraph.FormatTime(ns); got != want {
			t.Fatalf("FormatTime(%d)=%s, want %s", ns, got, want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		ns := r.Int64N(1<<63-1) - 1<<62
		if got, want := twingraph.FormatTime(ns), time.Unix(0, ns).UTC().Format(twingraph.TimeLayout); got != want {
			t.Fatalf("FormatTime(%d)=%s, want %s", ns, got, want)
		}
	}
}

// BenchmarkTwinAppendJSON encodes a room of ten properties as ADT JSON.
func BenchmarkTwinAppendJSON(b *testing.B) {
	st := &twingraph.TwinState{ID: "room-1", Model: "dtmi:bench:Room;1"}
	st.Properties = map[string]json.RawMessage{}
	for i, name := range []string{"name", "area", "capacity", "temperature", "humidity", "co2", "noise", "occupancy", "comfort", "booked"} {
		st.Properties[name] = json.RawMessage(strconv.Itoa(i * 7))
	}
	t := twingraph.NewTwin(st, 42, 1_700_000_000_123_456_789)
	buf := make([]byte, 0, t.JSONSize())
	b.ReportAllocs()
	for b.Loop() {
		buf = t.AppendJSON(buf[:0])
	}
}
