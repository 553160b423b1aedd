package telemetry_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/twinlog/twinlog/projections/telemetry"
)

// TestParallelQuery checks that splitting a query's buckets among
// goroutines gives exactly the result of one goroutine, for buckets
// aligned with the partitions or not and ranges cutting partitions.
func TestParallelQuery(t *testing.T) {
	s, _ := telemetry.New(telemetry.Options{Partition: time.Hour})
	evs := genBatches(50, 6*60) // 50 twins, one point a minute for 6 hours
	for i := 0; i < len(evs); i += 7 {
		if err := s.Apply(evs[i:min(i+7, len(evs))]); err != nil {
			t.Fatal(err)
		}
	}
	aggs := []telemetry.Agg{telemetry.Count, telemetry.Min, telemetry.Max, telemetry.Avg, telemetry.Sum, telemetry.Last}
	ctx := context.Background()
	for _, q := range []telemetry.Query{
		{From: t0, To: t0.Add(6 * time.Hour), Bucket: time.Hour, Aggs: aggs},
		{From: t0.Add(7 * time.Minute), To: t0.Add(5*time.Hour + 3*time.Minute), Bucket: 17 * time.Minute, Aggs: aggs},
		{Twins: []string{"room0003", "room0042", "nope"}, From: t0.Add(-time.Hour), To: t0.Add(9 * time.Hour), Bucket: 45 * time.Minute, Aggs: aggs},
		{From: t0, To: t0.Add(6 * time.Hour), Aggs: aggs},
	} {
		old := telemetry.SetParallelRows(1 << 40)
		one, err := s.Run(ctx, q)
		telemetry.SetParallelRows(1)
		many, err2 := s.Run(ctx, q)
		telemetry.SetParallelRows(old)
		if err != nil || err2 != nil {
			t.Fatal(err, err2)
		}
		if len(one.Series) == 0 {
			t.Fatalf("%+v: no series", q)
		}
		if !reflect.DeepEqual(one, many) {
			t.Errorf("%v..%v by %v: one goroutine and several disagree", q.From, q.To, q.Bucket)
		}
	}
}
