package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/telemetry"
	"github.com/twinlog/twinlog/projections/twingraph"
)

var t0 = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

// events returns: two rooms of model Room created, then for each minute of
// two hours a point per room (room1 as single events, room2 in batch
// events), temperature = minute, room2 also co2.
func events(t testing.TB) []event.Event {
	var out []event.Event
	pos := uint64(0)
	add := func(e event.Event, tm time.Time) {
		pos++
		e.Position, e.Time = pos, tm.UnixNano()
		out = append(out, e)
	}
	for _, id := range []string{"room1", "room2"} {
		e, err := twingraph.NewEvent(twingraph.TwinStream(id), twingraph.TypeTwinCreated, "a", twingraph.TwinState{ID: id, Model: "dtmi:ex:Room;1"})
		if err != nil {
			t.Fatal(err)
		}
		add(e, t0)
	}
	for m := range 120 {
		tm := t0.Add(time.Duration(m) * time.Minute)
		e, _ := twingraph.NewEvent(twingraph.TelemetryStream("room1"), twingraph.TypeTelemetry, "a", twingraph.Telemetry{
			Twin: "room1", MessageID: fmt.Sprint(m), Body: json.RawMessage(fmt.Sprintf(`{"temperature":%d,"label":"x","on":true}`, m))})
		add(e, tm)
		p := twingraph.AppendTelemetryBatchHeader(nil, 1)
		p = twingraph.AppendTelemetryPoint(p, &twingraph.TelemetryPoint{Twin: "room2", MessageID: fmt.Sprint(m), SourceTime: tm.Format(time.RFC3339),
			Body: []byte(fmt.Sprintf(`{"temperature":%d,"co2":%d}`, 100+m, 400+m))})
		add(event.Event{Stream: twingraph.TelemetryBatchStream(0), Type: twingraph.TypeTelemetryBatch, SchemaVersion: twingraph.TelemetryBatchSchemaVersion, Payload: p}, tm.Add(time.Hour))
	}
	return out
}

func newStore(t testing.TB, opts telemetry.Options) *telemetry.Store {
	s, err := telemetry.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	evs := events(t)
	for i := 0; i < len(evs); i += 7 {
		if err := s.Apply(evs[i:min(i+7, len(evs))]); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestQuery(t *testing.T) {
	s := newStore(t, telemetry.Options{ChunkRows: 50})
	ctx := context.Background()
	res, err := s.Run(ctx, telemetry.Query{
		Twins: []string{"room1", "room2"}, From: t0, To: t0.Add(2 * time.Hour), Bucket: time.Hour,
		Aggs: []telemetry.Agg{telemetry.Count, telemetry.Min, telemetry.Max, telemetry.Avg, telemetry.Sum, telemetry.Last},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, se := range res.Series {
		for _, b := range se.Buckets {
			got[fmt.Sprintf("%s %s %s", se.Twin, se.Field, b.Start.Format("15:04"))] = fmt.Sprintf("n=%d min=%g max=%g avg=%g sum=%g last=%g", *b.Count, *b.Min, *b.Max, *b.Avg, *b.Sum, *b.Last)
		}
	}
	want := map[string]string{
		"room1 temperature 00:00": "n=60 min=0 max=59 avg=29.5 sum=1770 last=59",
		"room1 temperature 01:00": "n=60 min=60 max=119 avg=89.5 sum=5370 last=119",
		"room1 on 00:00":          "n=60 min=1 max=1 avg=1 sum=60 last=1",
		"room1 on 01:00":          "n=60 min=1 max=1 avg=1 sum=60 last=1",
		// room2's points carry a source time, an hour before the log's.
		"room2 temperature 00:00": "n=60 min=100 max=159 avg=129.5 sum=7770 last=159",
		"room2 temperature 01:00": "n=60 min=160 max=219 avg=189.5 sum=11370 last=219",
		"room2 co2 00:00":         "n=60 min=400 max=459 avg=429.5 sum=25770 last=459",
		"room2 co2 01:00":         "n=60 min=460 max=519 avg=489.5 sum=29370 last=519",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d cells %v, want %d", len(got), got, len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
	// A sub-range, one field, one twin, default aggregate.
	res, err = s.Run(ctx, telemetry.Query{Twins: []string{"room1"}, Fields: []string{"temperature"}, From: t0.Add(10 * time.Minute), To: t0.Add(20 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Series) != 1 || len(res.Series[0].Buckets) != 1 || *res.Series[0].Buckets[0].Avg != 14.5 {
		b, _ := json.Marshal(res)
		t.Fatalf("sub-range: %s", b)
	}
	if _, err := s.Run(ctx, telemetry.Query{From: t0, To: t0}); err == nil {
		t.Fatal("empty range: no error")
	}
	if _, err := s.Run(ctx, telemetry.Query{From: t0, To: t0.Add(time.Hour), Aggs: []telemetry.Agg{"median"}}); err == nil {
		t.Fatal("unknown aggregate: no error")
	}
}

func TestRetention(t *testing.T) {
	s := newStore(t, telemetry.Options{Retention: 30 * time.Minute})
	res, err := s.Run(context.Background(), telemetry.Query{From: t0, To: t0.Add(3 * time.Hour), Aggs: []telemetry.Agg{telemetry.Count}})
	if err != nil {
		t.Fatal(err)
	}
	for _, se := range res.Series {
		for _, b := range se.Buckets {
			if *b.Count != 60 {
				t.Fatalf("%s %s: %d points kept, want the last hour's 60", se.Twin, se.Field, *b.Count)
			}
		}
	}
	if s.Points() != 120 {
		t.Fatalf("%d points kept, want 120", s.Points())
	}
}

func TestExport(t *testing.T) {
	s := newStore(t, telemetry.Options{ChunkRows: 50})
	ctx := context.Background()
	var buf bytes.Buffer
	n, err := s.WriteIPC(ctx, &buf, telemetry.Export{Model: "dtmi:ex:Room;1"})
	if err != nil || n != 240 {
		t.Fatalf("ipc: %d rows, %v", n, err)
	}
	r, err := ipc.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	rows := int64(0)
	for r.Next() {
		rows += r.RecordBatch().NumRows()
	}
	if rows != 240 || r.Schema().NumFields() != 5 {
		t.Fatalf("ipc read %d rows, schema %v", rows, r.Schema())
	}
	r.Release()

	buf.Reset()
	if n, err := s.WriteParquet(ctx, &buf, telemetry.Export{Model: "dtmi:ex:Room;1"}); err != nil || n != 240 {
		t.Fatalf("parquet: %d rows, %v", n, err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != 240 || tbl.NumCols() != 5 {
		t.Fatalf("parquet read %d rows × %d cols: %v", tbl.NumRows(), tbl.NumCols(), tbl.Schema())
	}
}

// TestPointsFollowModelsAndFields records points whose twins change model
// mid-chunk, whose fields come in changing order and sets, and which arrive
// in runs of one twin, then of alternating twins: every point lands in its
// twin's model history at the time of the point, under its own fields.
func TestPointsFollowModelsAndFields(t *testing.T) {
	s, err := telemetry.New(telemetry.Options{ChunkRows: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	pos := uint64(0)
	apply := func(e event.Event) {
		pos++
		e.Position, e.Time = pos, t0.Add(time.Duration(pos)*time.Second).UnixNano()
		if err := s.Apply([]event.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	create := func(id, model string, typ string) {
		e, err := twingraph.NewEvent(twingraph.TwinStream(id), typ, "a", twingraph.TwinState{ID: id, Model: model})
		if err != nil {
			t.Fatal(err)
		}
		apply(e)
	}
	batch := func(points ...[2]string) {
		p := twingraph.AppendTelemetryBatchHeader(nil, len(points))
		for i, pt := range points {
			p = twingraph.AppendTelemetryPoint(p, &twingraph.TelemetryPoint{Twin: pt[0], MessageID: fmt.Sprint(pos, ".", i), Body: []byte(pt[1])})
		}
		apply(event.Event{Stream: twingraph.TelemetryBatchStream(0), Type: twingraph.TypeTelemetryBatch, SchemaVersion: twingraph.TelemetryBatchSchemaVersion, Payload: p})
	}
	create("x", "dtmi:ex:A;1", twingraph.TypeTwinCreated)
	create("y", "dtmi:ex:A;1", twingraph.TypeTwinCreated)
	batch([2]string{"x", `{"a":1,"b":10}`}, [2]string{"x", `{"b":20,"a":2}`}, [2]string{"y", `{"a":3}`}, [2]string{"x", `{"c":30,"a":4}`})
	create("x", "dtmi:ex:B;1", twingraph.TypeTwinReplaced)
	batch([2]string{"x", `{"a":5,"b":50}`}, [2]string{"y", `{"a":6,"b":60}`}, [2]string{"x", `{"a":7}`}, [2]string{"z", `{"a":8}`})
	// A patch that migrates y, in the binary form; the store must keep
	// nothing of its payload, which a log may reuse.
	mig := twingraph.NewPatchedEvent(twingraph.TwinStream("y"), "a", &twingraph.TwinPatched{ID: "y", Model: "dtmi:ex:C;1",
		Patch: json.RawMessage(`[{"op":"replace","path":"/$metadata/$model","value":"dtmi:ex:C;1"}]`)})
	apply(mig)
	for i := range mig.Payload {
		mig.Payload[i] = 'Z'
	}
	batch([2]string{"y", `{"a":9}`})

	sums := func(models ...string) map[string]string {
		res, err := s.Run(context.Background(), telemetry.Query{Models: models, From: t0, To: t0.Add(time.Hour), Aggs: []telemetry.Agg{telemetry.Count, telemetry.Sum}})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, se := range res.Series {
			for _, b := range se.Buckets {
				got[se.Twin+" "+se.Field] = fmt.Sprintf("n=%d sum=%g", *b.Count, *b.Sum)
			}
		}
		return got
	}
	for _, c := range []struct {
		model string
		want  map[string]string
	}{
		{"dtmi:ex:A;1", map[string]string{"x a": "n=3 sum=7", "x b": "n=2 sum=30", "x c": "n=1 sum=30", "y a": "n=2 sum=9", "y b": "n=1 sum=60"}},
		{"dtmi:ex:B;1", map[string]string{"x a": "n=2 sum=12", "x b": "n=1 sum=50"}},
		{"dtmi:ex:C;1", map[string]string{"y a": "n=1 sum=9"}},
		{"", map[string]string{"z a": "n=1 sum=8"}},
	} {
		got := sums(c.model)
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("model %q: %v, want %v", c.model, got, c.want)
		}
	}
	if m, ok := s.ModelOf("x"); !ok || m != "dtmi:ex:B;1" {
		t.Errorf("ModelOf(x) = %q, %v", m, ok)
	}
	if m, ok := s.ModelOf("y"); !ok || m != "dtmi:ex:C;1" {
		t.Errorf("ModelOf(y) = %q, %v", m, ok)
	}
	if _, ok := s.ModelOf("z"); ok {
		t.Error("ModelOf(z) reports a model for a twin never created")
	}
}
