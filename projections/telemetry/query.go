package telemetry

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
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

	// Twins and fields get dense indexes; cells are [field][twin*nb+bucket].
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
	// A first pass over the records' dictionaries and schemas fixes the
	// twins and fields, so the cells can be laid out bucket-major
	// ([field][bucket*stride+twin]): consecutive rows, the same minute of
	// different twins, then touch neighbouring cells.
	res := &Result{}
	for _, p := range parts {
		rec := p.rec
		res.Rows += rec.NumRows()
		if dictArr, ok := rec.Column(0).(*array.Dictionary); ok && !fixedTwins {
			dict := dictArr.Dictionary().(*array.String)
			for i := range dict.Len() {
				if _, ok := twinIdx[dict.Value(i)]; !ok {
					twinIdx[dict.Value(i)] = len(twins)
					twins = append(twins, dict.Value(i))
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
	cells := make([][]acc, len(fields))
	for i := range cells {
		cells[i] = make([]acc, stride*nb)
	}
	// Workers take disjoint ranges of buckets, so they write disjoint
	// cells; each scans the records whose partition overlaps its range.
	sc := scan{from: from, to: to, width: width, stride: stride, twinIdx: twinIdx, fieldIdx: fieldIdx, cells: cells}
	workers := 1
	if res.Rows >= parallelRows {
		workers = min(runtime.GOMAXPROCS(0), nb, maxWorkers)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := nb*w/workers, nb*(w+1)/workers
		tLo, tHi := from+int64(lo)*width, min(to, from+int64(hi)*width)
		wg.Go(func() {
			var mask []int32
			for _, p := range parts {
				if p.hi <= tLo || p.lo >= tHi {
					continue
				}
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				if mask, errs[w] = sc.record(p.rec, mask, tLo, tHi); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Emit series in twin then field order.
	order := make([]int, len(twins))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmpStr(twins[a], twins[b]) })
	forder := make([]int, len(fields))
	for i := range forder {
		forder[i] = i
	}
	slices.SortFunc(forder, func(a, b int) int { return cmpStr(fields[a], fields[b]) })
	for _, ti := range order {
		for _, fi := range forder {
			// Count the buckets first: one allocation for the series'
			// buckets and one for its averages, not one per bucket.
			n := 0
			for b := range nb {
				if cells[fi][b*stride+ti].n > 0 {
					n++
				}
			}
			if n == 0 {
				continue
			}
			bs := make([]Bucket, 0, n)
			var avgs []float64
			if slices.Contains(q.Aggs, Avg) {
				avgs = make([]float64, 0, n)
			}
			for b := range nb {
				a := &cells[fi][b*stride+ti]
				if a.n == 0 {
					continue
				}
				bk := Bucket{Start: time.Unix(0, from+int64(b)*width).UTC()}
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
						avgs = append(avgs, a.sum/float64(a.n))
						bk.Avg = &avgs[len(avgs)-1]
					}
				}
				bs = append(bs, bk)
			}
			res.Series = append(res.Series, Series{Twin: twins[ti], Field: fields[fi], Buckets: bs})
		}
	}
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

// Queries over at least parallelRows rows split their buckets among up to
// maxWorkers goroutines.
var parallelRows int64 = 1 << 20

const maxWorkers = 8

// scan is the read-only state of one query's aggregation and its cells.
type scan struct {
	from, to, width int64
	stride          int
	twinIdx         map[string]int
	fieldIdx        map[string]int
	cells           [][]acc
}

// record aggregates the rows of rec with times in [tLo, tHi) into the
// cells (mask is scratch space, returned for reuse).
func (sc *scan) record(rec arrow.RecordBatch, mask []int32, tLo, tHi int64) ([]int32, error) {
	dictArr, ok := rec.Column(0).(*array.Dictionary)
	if !ok {
		return mask, errors.New("telemetry: record without a twin dictionary")
	}
	dict := dictArr.Dictionary().(*array.String)
	mask = mask[:0]
	any := false
	for i := range dict.Len() {
		if j, ok := sc.twinIdx[dict.Value(i)]; ok {
			mask = append(mask, int32(j))
			any = true
		} else {
			mask = append(mask, -1)
		}
	}
	if !any {
		return mask, nil
	}
	schema := rec.Schema()
	idx := dictArr.Indices().(*array.Int32).Int32Values()
	times := arrow.TimestampTraits.CastFromBytes(rec.Column(1).Data().Buffers()[1].Bytes())[rec.Column(1).Data().Offset():][:rec.NumRows()]
	tLo, tHi = max(tLo, sc.from), min(tHi, sc.to)
	from, width, stride := sc.from, sc.width, sc.stride
	for c := 2; c < int(rec.NumCols()); c++ {
		fi, ok := sc.fieldIdx[schema.Field(c).Name]
		if !ok {
			continue
		}
		col := rec.Column(c).(*array.Float64)
		vals := col.Float64Values()
		cs := sc.cells[fi]
		nulls := col.NullN() > 0
		// Rows arrive nearly in time order: the bucket is recomputed
		// only when a row leaves the current one.
		bLo, bHi, bOff := int64(1), int64(0), 0
		for r, ti := range idx {
			tw := mask[ti]
			t := int64(times[r])
			if tw < 0 || t < tLo || t >= tHi || (nulls && col.IsNull(r)) {
				continue
			}
			if t < bLo || t >= bHi {
				b := (t - from) / width
				bLo, bHi, bOff = from+b*width, from+(b+1)*width, int(b)*stride
			}
			v := vals[r]
			a := &cs[bOff+int(tw)]
			if a.n == 0 {
				a.min, a.max = v, v
			} else if v < a.min {
				a.min = v
			} else if v > a.max {
				a.max = v
			}
			a.n++
			a.sum += v
			if a.n == 1 || t >= a.lastT {
				a.last, a.lastT = v, t
			}
		}
	}
	return mask, nil
}
