package telemetry

import (
	"bytes"
	"context"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/twinlog/twinlog/engine"
)

// Agg is an aggregate over a bucket's values.
type Agg string

// Aggregates.
const (
	Count Agg = "count"
	Min   Agg = "min"
	Max   Agg = "max"
	Avg   Agg = "avg"
	Sum   Agg = "sum"
	Last  Agg = "last"
)

// MaxCells bounds twins × fields × buckets of one query.
const MaxCells = 20_000_000

// Query selects and aggregates telemetry.
type Query struct {
	// Twins are the twins; empty means every twin.
	Twins []string
	// Models restricts the search to these models' histories; empty means
	// every model.
	Models []string
	// Fields are the fields; empty means every field.
	Fields []string
	// From and To bound the points' times: From <= t < To. Required.
	From, To time.Time
	// Bucket is the downsampling width; 0 means one bucket for the range.
	Bucket time.Duration
	// Aggs are the aggregates computed per bucket. Default avg.
	Aggs []Agg
}

// Series is one twin's field over the query's buckets.
type Series struct {
	Twin    string   `json:"twin"`
	Field   string   `json:"field"`
	Buckets []Bucket `json:"buckets"`
}

// Bucket is the aggregates of one bucket with at least one point. Only the
// aggregates asked for are set.
type Bucket struct {
	Start time.Time `json:"start"`
	Count *int64    `json:"count,omitempty"`
	Min   *float64  `json:"min,omitempty"`
	Max   *float64  `json:"max,omitempty"`
	Avg   *float64  `json:"avg,omitempty"`
	Sum   *float64  `json:"sum,omitempty"`
	Last  *float64  `json:"last,omitempty"`
}

// Result is a query's answer and what it scanned.
type Result struct {
	Series []Series `json:"series"`
	// Rows is the number of rows scanned.
	Rows int64 `json:"rowsScanned"`
}

func invalid(format string, args ...any) error {
	return engine.Errorf(engine.KindInvalid, "InvalidArgument", format, args...)
}

// acc accumulates one cell.
type acc struct {
	n             int64
	sum, min, max float64
	last          float64
	lastT         int64
}

// Run answers q.
func (s *Store) Run(ctx context.Context, q Query) (*Result, error) {
	if q.From.IsZero() || q.To.IsZero() || !q.From.Before(q.To) {
		return nil, invalid("from and to are required, with from before to")
	}
	if q.Bucket < 0 {
		return nil, invalid("bucket must be positive")
	}
	if len(q.Aggs) == 0 {
		q.Aggs = []Agg{Avg}
	}
	for _, a := range q.Aggs {
		switch a {
		case Count, Min, Max, Avg, Sum, Last:
		default:
			return nil, invalid("unknown aggregate %q; use count, min, max, avg, sum or last", a)
		}
	}
	from, to := q.From.UnixNano(), q.To.UnixNano()
	width := to - from
	if q.Bucket > 0 {
		width = int64(q.Bucket)
	}
	if (to-from)/width >= MaxCells {
		return nil, invalid("the range holds over %d buckets; widen the bucket", MaxCells)
	}
	nb := int((to - from + width - 1) / width)
	models := q.Models
	if len(models) == 0 {
		models = nil
	}
	parts := s.partRecords(models, from, to)
	defer func() {
		for _, p := range parts {
			p.rec.Release()
		}
	}()

	// Twins and fields get dense indexes. A first pass over the records'
	// dictionaries and schemas fixes them, so the cells can be laid out
	// bucket-major (see aggregate.go).
	twinIdx := map[string]int{}
	var twins []string
	for _, t := range q.Twins {
		if _, ok := twinIdx[t]; !ok {
			twinIdx[t] = len(twins)
			twins = append(twins, t)
		}
	}
	fixedTwins := len(q.Twins) > 0
	fieldIdx := map[string]int{}
	var fields []string
	for _, f := range q.Fields {
		if _, ok := fieldIdx[f]; !ok {
			fieldIdx[f] = len(fields)
			fields = append(fields, f)
		}
	}
	fixedFields := len(q.Fields) > 0
	res := &Result{}
	var lastOffsets, lastValues []byte
	for _, p := range parts {
		rec := p.rec
		res.Rows += rec.NumRows()
		if dictArr, ok := rec.Column(0).(*array.Dictionary); ok && !fixedTwins {
			dict := dictArr.Dictionary().(*array.String)
			// Records mostly repeat the last one's dictionary.
			offsets, values := dictBuffers(dict)
			if lastOffsets == nil || !bytes.Equal(offsets, lastOffsets) || !bytes.Equal(values, lastValues) {
				lastOffsets, lastValues = offsets, values
				for i := range dict.Len() {
					if _, ok := twinIdx[dict.Value(i)]; !ok {
						twinIdx[dict.Value(i)] = len(twins)
						twins = append(twins, dict.Value(i))
					}
				}
			}
		}
		if !fixedFields {
			for _, f := range rec.Schema().Fields()[2:] {
				if _, ok := fieldIdx[f.Name]; !ok {
					fieldIdx[f.Name] = len(fields)
					fields = append(fields, f.Name)
				}
			}
		}
	}
	stride := len(twins)
	if cells := float64(len(fields)) * float64(stride) * float64(nb); cells > MaxCells {
		return nil, invalid("the query spans %d twins × %d fields × %d buckets, over %d; narrow it or widen the bucket", stride, len(fields), nb, MaxCells)
	}
	sc := &scan{from: from, to: to, width: width, stride: stride, twins: twins, twinIdx: twinIdx, fieldIdx: fieldIdx,
		cells: newAggCells(len(fields), stride*nb, needsFull(q.Aggs))}
	defer sc.cells.release()
	if err := sc.aggregate(ctx, parts, nb, res.Rows); err != nil {
		return nil, err
	}
	res.Series = sc.series(&q, twins, fields, nb, res.Rows >= parallelRows)
	return res, nil
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
