package simulate_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/simulate"
	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/query"
	"github.com/twinlog/twinlog/projections/timetravel"
	"github.com/twinlog/twinlog/projections/twingraph"
)

const roomModel = `[{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Room;1","@type":"Interface",
	"contents":[{"@type":"Property","name":"temperature","schema":"double"},
	{"@type":"Telemetry","name":"t","schema":"double"}]}]`

var t0 = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

type world struct {
	log   *memlog.Log
	graph *twingraph.Graph
	twins *twins.Service
	sim   *simulate.Simulator
	clock struct {
		sync.Mutex
		t time.Time
	}
}

// tick advances the main log's clock by d.
func (w *world) tick(d time.Duration) {
	w.clock.Lock()
	w.clock.t = w.clock.t.Add(d)
	w.clock.Unlock()
}

// open starts an empty main log with its engine, twin service and a
// simulator with opts; the log's clock starts at t0.
func (w *world) open(t testing.TB, opts simulate.Options) *engine.Engine {
	t.Helper()
	w.clock.t = t0
	w.log = memlog.New(memlog.Options{Now: func() time.Time {
		w.clock.Lock()
		defer w.clock.Unlock()
		return w.clock.t
	}})
	w.graph = twingraph.New(twingraph.Options{})
	eng, err := engine.New(w.log, engine.Options{}, w.graph)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	w.twins = twins.New(eng, w.graph, twins.Options{})
	tt, err := timetravel.New(w.log, w.graph, timetravel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w.sim, err = simulate.New(w.log, tt, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.sim.Close)
	return eng
}

func newWorld(t *testing.T) *world { return newWorldWith(t, simulate.Options{}) }

// newWorldWith is newWorld with a simulator configured by opts.
func newWorldWith(t *testing.T, opts simulate.Options) *world {
	t.Helper()
	w := &world{}
	w.open(t, opts)
	ctx := context.Background()
	var docs []json.RawMessage
	if err := json.Unmarshal([]byte(roomModel), &docs); err != nil {
		t.Fatal(err)
	}
	if _, err := w.twins.AddModels(ctx, "test", docs); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"r1", "r2"} {
		w.tick(time.Minute)
		if _, _, err := w.twins.PutTwin(ctx, "test", id, []byte(`{"$metadata":{"$model":"dtmi:ex:Room;1"},"temperature":20}`), twins.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *world) temperature(t *testing.T, g *twingraph.Graph, id string) float64 {
	t.Helper()
	res, err := graphquery.Run(context.Background(), g, "SELECT T.temperature FROM DIGITALTWINS T WHERE T.$dtId = '"+id+"'", query.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 1 {
		t.Fatalf("rows=%d, want 1", len(res.Rows))
	}
	var row struct{ Temperature float64 }
	if err := json.Unmarshal(res.Rows[0], &row); err != nil {
		t.Fatal(err)
	}
	return row.Temperature
}

func TestForkAtPositionWithPatches(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	fork := w.graph.Snapshot().Position()
	w.tick(time.Minute)
	if _, err := w.twins.PatchTwin(ctx, "test", "r1", []byte(`[{"op":"replace","path":"/temperature","value":30}]`), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	mainHead, _ := w.log.Head(ctx)
	mainPos := w.graph.Snapshot().Position()

	b, err := w.sim.Create(ctx, simulate.Request{At: timetravel.At{Position: fork}, Events: []simulate.Event{
		{TwinID: "r2", Patch: json.RawMessage(`[{"op":"replace","path":"/temperature","value":25}]`)},
		{TwinID: "r2", Telemetry: json.RawMessage(`{"t":1}`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	st := b.Status()
	if st.Fork != fork || st.Position != fork+2 || st.Fed != 2 || !st.Done {
		t.Fatalf("status %+v, want fork %d, position %d, 2 fed, done", st, fork, fork+2)
	}
	if got := w.temperature(t, b.Graph(), "r1"); got != 20 {
		t.Fatalf("branch r1=%v, want 20 (as at the fork)", got)
	}
	if got := w.temperature(t, b.Graph(), "r2"); got != 25 {
		t.Fatalf("branch r2=%v, want 25", got)
	}
	if got := w.temperature(t, w.graph, "r2"); got != 20 {
		t.Fatalf("main r2=%v, want 20", got)
	}
	if got := w.temperature(t, w.graph, "r1"); got != 30 {
		t.Fatalf("main r1=%v, want 30", got)
	}
	if h, _ := w.log.Head(ctx); h != mainHead {
		t.Fatalf("main head=%d, want %d", h, mainHead)
	}
	if p := w.graph.Snapshot().Position(); p != mainPos {
		t.Fatalf("main position=%d, want %d", p, mainPos)
	}
	if _, ok := w.graph.Snapshot().Telemetry("r2"); ok {
		t.Fatal("main graph got the branch's telemetry")
	}
	if err := w.sim.Delete(b.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.sim.Get(b.ID()); !errors.Is(err, simulate.ErrNotFound) {
		t.Fatalf("get after delete: %v, want ErrNotFound", err)
	}
}

func TestForkAtTime(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.tick(time.Hour)
	at := w.clock.t
	w.tick(time.Hour)
	if _, err := w.twins.PatchTwin(ctx, "test", "r1", []byte(`[{"op":"replace","path":"/temperature","value":30}]`), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	b, err := w.sim.Create(ctx, simulate.Request{At: timetravel.At{Time: at}})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.temperature(t, b.Graph(), "r1"); got != 20 {
		t.Fatalf("branch r1=%v, want 20", got)
	}
	if got, want := b.Status().Fork, w.graph.Snapshot().Position()-1; got != want {
		t.Fatalf("fork=%d, want %d", got, want)
	}
}

func TestReplayWindow(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	fork := w.graph.Snapshot().Position()
	for i, v := range []string{`{"t":1}`, `{"t":2}`, `{"t":3}`} {
		w.tick(time.Minute)
		if err := w.twins.SendTelemetry(ctx, "dev", "r1", "", "m"+string(rune('0'+i)), "", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	last := w.clock.t
	mainHead, _ := w.log.Head(ctx)
	b, err := w.sim.Create(ctx, simulate.Request{At: timetravel.At{Position: fork}, Window: &simulate.Window{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	st := b.Status()
	if st.Fed != 3 || st.Position != fork+3 {
		t.Fatalf("status %+v, want 3 fed, position %d", st, fork+3)
	}
	rec, ok := b.Graph().Snapshot().Telemetry("r1")
	if !ok || len(rec.Last) != 1 {
		t.Fatalf("branch telemetry of r1: %+v, %v", rec, ok)
	}
	if got := string(rec.Last[0].Body); got != `{"t":3}` {
		t.Fatalf("last telemetry %s, want {\"t\":3}", got)
	}
	if got := time.Unix(0, rec.Last[0].Time).UTC(); !got.Equal(last) {
		t.Fatalf("last telemetry at %v, want %v (the window starts at the fork)", got, last)
	}
	if h, _ := w.log.Head(ctx); h != mainHead {
		t.Fatalf("main head=%d, want %d", h, mainHead)
	}
}

func TestOffsetLog(t *testing.T) {
	ctx := context.Background()
	const base = 100
	l := simulate.NewOffsetLog(memlog.New(memlog.Options{}), base)
	defer l.Close()
	if h, err := l.Head(ctx); err != nil || h != base {
		t.Fatalf("head=%d %v, want %d", h, err, base)
	}
	ev := event.Event{Stream: "s", Type: "x", Payload: []byte("{}")}
	// A stream last written at or before the fork: the overlay has none of it.
	res, err := l.Append(ctx, []event.Event{ev}, eventlog.Expect{Stream: "s", Version: 42})
	if err != nil || res.First != base+1 || res.Last != base+1 {
		t.Fatalf("append=%+v %v, want position %d", res, err, base+1)
	}
	if _, err := l.Append(ctx, []event.Event{ev}, eventlog.Expect{Stream: "s", Version: 42}); !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("stale append: %v, want ErrConflict", err)
	} else if ce := new(eventlog.ConflictError); !errors.As(err, &ce) || ce.Actual != base+1 || ce.Expected != 42 {
		t.Fatalf("conflict %+v, want actual %d expected 42", ce, base+1)
	}
	if _, err := l.Append(ctx, []event.Event{ev}, eventlog.Expect{Stream: "s", Version: base + 1}); err != nil {
		t.Fatal(err)
	}
	if v, _ := l.StreamVersion(ctx, "s"); v != base+2 {
		t.Fatalf("version=%d, want %d", v, base+2)
	}
	if v, _ := l.StreamVersion(ctx, "other"); v != eventlog.NoStream {
		t.Fatalf("version of unknown stream=%d, want 0", v)
	}
	evs, err := l.Read(ctx, base+1, 10)
	if err != nil || len(evs) != 2 || evs[0].Position != base+1 || evs[1].Position != base+2 {
		t.Fatalf("read=%v %v", evs, err)
	}
	if _, err := l.Read(ctx, base, 10); !errors.Is(err, eventlog.ErrOutOfRange) {
		t.Fatalf("read at base: %v, want ErrOutOfRange", err)
	}
	if evs, _ := l.ReadStream(ctx, "s", 0, 10); len(evs) != 2 || evs[1].Position != base+2 {
		t.Fatalf("read stream=%v", evs)
	}
	if p, _ := l.SeekTime(ctx, time.Now().Add(time.Hour)); p != base+3 {
		t.Fatalf("seek past the end=%d, want %d", p, base+3)
	}
	sub, err := l.Subscribe(ctx, base+2)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if evs, err := sub.Next(ctx); err != nil || len(evs) != 1 || evs[0].Position != base+2 {
		t.Fatalf("next=%v %v", evs, err)
	}
	if _, err := l.Subscribe(ctx, base); !errors.Is(err, eventlog.ErrOutOfRange) {
		t.Fatalf("subscribe at base: %v, want ErrOutOfRange", err)
	}
}
