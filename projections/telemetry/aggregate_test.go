package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
)

var t0 = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

// reference answers q the plainest way: every row of every record, looked
// up through the Arrow accessors, into a map of cells. The aggregation's
// kernels, masks, tasks and bucket-major read-out must give exactly this.
func reference(t *testing.T, s *Store, q Query) *Result {
	t.Helper()
	if len(q.Aggs) == 0 {
		q.Aggs = []Agg{Avg}
	}
	from, to := q.From.UnixNano(), q.To.UnixNano()
	width := to - from
	if q.Bucket > 0 {
		width = int64(q.Bucket)
	}
	var models []string
	if len(q.Models) > 0 {
		models = q.Models
	}
	parts := s.partRecords(models, from, to)
	defer func() {
		for _, p := range parts {
			p.rec.Release()
		}
	}()
	type key struct {
		twin, field string
		b           int64
	}
	cells := map[key]*acc{}
	res := &Result{}
	for _, p := range parts {
		rec := p.rec
		res.Rows += rec.NumRows()
		dict := rec.Column(0).(*array.Dictionary)
		names := dict.Dictionary().(*array.String)
		times := rec.Column(1).(*array.Timestamp)
		for c := 2; c < int(rec.NumCols()); c++ {
			field := rec.Schema().Field(c).Name
			if len(q.Fields) > 0 && !slices.Contains(q.Fields, field) {
				continue
			}
			col := rec.Column(c).(*array.Float64)
			for r := range int(rec.NumRows()) {
				twin := names.Value(dict.GetValueIndex(r))
				tm := int64(times.Value(r))
				if (len(q.Twins) > 0 && !slices.Contains(q.Twins, twin)) || tm < from || tm >= to || col.IsNull(r) {
					continue
				}
				k := key{twin, field, (tm - from) / width}
				a := cells[k]
				if a == nil {
					a = &acc{}
					cells[k] = a
				}
				a.add(col.Value(r), tm)
			}
		}
	}
	keys := make([]key, 0, len(cells))
	for k := range cells {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmpStr(a.twin, b.twin); c != 0 {
			return c
		}
		if c := cmpStr(a.field, b.field); c != 0 {
			return c
		}
		return int(a.b - b.b)
	})
	for _, k := range keys {
		if n := len(res.Series); n == 0 || res.Series[n-1].Twin != k.twin || res.Series[n-1].Field != k.field {
			res.Series = append(res.Series, Series{Twin: k.twin, Field: k.field, Buckets: []Bucket{}})
		}
		a := cells[k]
		bk := Bucket{Start: time.Unix(0, from+k.b*width).UTC()}
		for _, ag := range q.Aggs {
			switch ag {
			case Count:
				bk.Count = &a.n
			case Min:
				bk.Min = &a.min
			case Max:
				bk.Max = &a.max
			case Sum:
				bk.Sum = &a.sum
			case Last:
				bk.Last = &a.last
			case Avg:
				avg := a.sum / float64(a.n)
				bk.Avg = &avg
			}
		}
		se := &res.Series[len(res.Series)-1]
		se.Buckets = append(se.Buckets, bk)
	}
	return res
}

// variedEvents returns twins of two models (and some of none) sending
// points with gaps, out-of-order source times, sparse fields (nulls),
// booleans, components and non-numeric members, as single events and
// batches.
func variedEvents(t *testing.T, twins, minutes int) []event.Event {
	rng := rand.New(rand.NewPCG(3, 4))
	var out []event.Event
	pos := uint64(0)
	add := func(e event.Event, tm time.Time) {
		pos++
		e.Position, e.Time = pos, tm.UnixNano()
		out = append(out, e)
	}
	id := func(i int) string { return fmt.Sprintf("t%03d", i) }
	for i := range twins {
		if i%5 == 4 {
			continue // no model known
		}
		model := "dtmi:ex:A;1"
		if i%3 == 0 {
			model = "dtmi:ex:B;1"
		}
		e, err := twingraph.NewEvent(twingraph.TwinStream(id(i)), twingraph.TypeTwinCreated, "a", twingraph.TwinState{ID: id(i), Model: model})
		if err != nil {
			t.Fatal(err)
		}
		add(e, t0)
	}
	for m := range minutes {
		tm := t0.Add(time.Duration(m) * time.Minute)
		batch := twingraph.AppendTelemetryBatchHeader(nil, 0)
		n := 0
		for i := range twins {
			if rng.IntN(7) == 0 {
				continue // a missed minute
			}
			body := fmt.Sprintf(`{"temperature":%g`, math.Round(rng.NormFloat64()*1000)/100)
			if rng.IntN(3) > 0 {
				body += fmt.Sprintf(`,"co2":%d`, 400+rng.IntN(200))
			}
			if rng.IntN(4) == 0 {
				body += `,"on":true,"label":"x"`
			}
			body += "}"
			var st string
			if rng.IntN(5) == 0 {
				// A source time up to 40 minutes before or after the log's.
				st = tm.Add(time.Duration(rng.IntN(80)-40) * time.Minute).Format(time.RFC3339Nano)
			}
			comp := ""
			if i%4 == 1 {
				comp = "hvac"
			}
			if i%2 == 0 {
				e, err := twingraph.NewEvent(twingraph.TelemetryStream(id(i)), twingraph.TypeTelemetry, "a", twingraph.Telemetry{
					Twin: id(i), Component: comp, MessageID: fmt.Sprint(m), SourceTime: st, Body: json.RawMessage(body)})
				if err != nil {
					t.Fatal(err)
				}
				add(e, tm)
				continue
			}
			batch = twingraph.AppendTelemetryPoint(batch, &twingraph.TelemetryPoint{Twin: id(i), Component: comp, MessageID: fmt.Sprint(m), SourceTime: st, Body: []byte(body)})
			n++
		}
		if n > 0 {
			p := twingraph.AppendTelemetryBatchHeader(nil, n)
			p = append(p, batch[len(twingraph.AppendTelemetryBatchHeader(nil, 0)):]...)
			add(event.Event{Stream: twingraph.TelemetryBatchStream(0), Type: twingraph.TypeTelemetryBatch, SchemaVersion: twingraph.TelemetryBatchSchemaVersion, Payload: p}, tm)
		}
	}
	return out
}

// TestAggregateReference compares queries over varied telemetry, with one
// goroutine and several, against reference.
func TestAggregateReference(t *testing.T) {
	for _, opts := range []Options{{Partition: time.Hour, ChunkRows: 37}, {Partition: 24 * time.Hour, ChunkRows: 500}} {
		s, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		evs := variedEvents(t, 30, 5*60)
		for i := 0; i < len(evs); i += 11 {
			if err := s.Apply(evs[i:min(i+11, len(evs))]); err != nil {
				t.Fatal(err)
			}
		}
		all := []Agg{Count, Min, Max, Avg, Sum, Last}
		for _, q := range []Query{
			{From: t0, To: t0.Add(5 * time.Hour), Bucket: time.Hour},
			{From: t0, To: t0.Add(5 * time.Hour), Bucket: time.Hour, Aggs: []Agg{Count, Sum, Avg}},
			{From: t0, To: t0.Add(5 * time.Hour), Bucket: time.Hour, Aggs: all},
			{From: t0.Add(-time.Hour), To: t0.Add(6 * time.Hour), Bucket: 7 * time.Minute, Aggs: []Agg{Avg, Count}},
			{From: t0.Add(13 * time.Minute), To: t0.Add(4*time.Hour + 2*time.Minute), Bucket: 17 * time.Minute, Aggs: all},
			{Twins: []string{"t001", "t004", "t017", "nope", "t001"}, From: t0, To: t0.Add(5 * time.Hour), Bucket: 45 * time.Minute, Aggs: []Agg{Sum}},
			{Twins: []string{"t002"}, Fields: []string{"co2", "hvac.co2", "nope"}, From: t0, To: t0.Add(5 * time.Hour), Bucket: time.Minute, Aggs: all},
			{Models: []string{"dtmi:ex:B;1"}, From: t0, To: t0.Add(5 * time.Hour), Bucket: 30 * time.Minute},
			{Models: []string{"", "dtmi:ex:A;1"}, Fields: []string{"on"}, From: t0, To: t0.Add(5 * time.Hour), Aggs: all},
			{From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour), Aggs: []Agg{Last, Count}},
		} {
			want := reference(t, s, q)
			for _, rows := range []int64{1 << 40, 1} {
				old := SetParallelRows(rows)
				got, err := s.Run(context.Background(), q)
				SetParallelRows(old)
				if err != nil {
					t.Fatal(err)
				}
				if len(want.Series) == 0 {
					t.Fatalf("%+v: no series; the data should give some", q)
				}
				if !reflect.DeepEqual(got, want) {
					g, _ := json.Marshal(got)
					w, _ := json.Marshal(want)
					t.Fatalf("parallel from %d rows: %v..%v by %v %v twins=%v fields=%v models=%v:\n got %.600s\nwant %.600s", rows, q.From, q.To, q.Bucket, q.Aggs, q.Twins, q.Fields, q.Models, g, w)
				}
			}
		}
	}
}
