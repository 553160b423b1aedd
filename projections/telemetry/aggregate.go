package telemetry

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
)

// The aggregation of a query: cells of (field, bucket, twin), filled by a
// pass over the records' columns, then read out into series.
//
// A query asking only for count, sum and avg keeps a count and a sum per
// cell (16 bytes, sumCell) and adds each row with no comparison of values;
// min, max or last keep the whole acc (48 bytes) and compare. Cells are
// laid out bucket-major, [field][bucket*stride+twin]: consecutive rows, the
// same minute of different twins, touch neighbouring cells, and a bucket's
// cells stay in cache while its rows are read.
//
// The buckets are split into tasks, several per goroutine, which the
// goroutines take in turn: each cell belongs to one task, and each task
// reads its records in order and their rows in order, so every cell adds
// its values in the order one goroutine would, and results do not depend
// on how the work was split. Tasks end at partition boundaries where they
// can, so that no record is read by two tasks.
//
// The cells are scratch space, reused from query to query (a month of
// hourly buckets for 1,000 twins is 11.5 MB of them): the series get
// copies of their values, not pointers into them.

// sumCell accumulates a cell for count, sum and avg.
type sumCell struct {
	n   int64
	sum float64
}

// aggCells are the cells of one query, of either kind.
type aggCells struct {
	full bool
	sums [][]sumCell // [field][bucket*stride+twin], when !full
	accs [][]acc     // the same, when full
}

// Cell arrays up to maxPooledBytes are kept for the next query.
const maxPooledBytes = 64 << 20

var sumPool, accPool sync.Pool // of *[]sumCell, *[]acc

func newAggCells(fields, cells int, full bool) *aggCells {
	c := &aggCells{full: full}
	if full {
		c.accs = make([][]acc, fields)
		for i := range c.accs {
			c.accs[i] = pooled[acc](&accPool, cells)
		}
	} else {
		c.sums = make([][]sumCell, fields)
		for i := range c.sums {
			c.sums[i] = pooled[sumCell](&sumPool, cells)
		}
	}
	return c
}

// poolable reports whether an array of n cells of type T is kept for
// reuse.
func poolable[T any](n int) bool {
	var cell T
	return n*int(unsafe.Sizeof(cell)) <= maxPooledBytes
}

// pooled returns n zeroed cells, from pool when it has enough.
func pooled[T any](pool *sync.Pool, n int) []T {
	if poolable[T](n) {
		if p, ok := pool.Get().(*[]T); ok {
			if cap(*p) >= n {
				s := (*p)[:n]
				clear(s)
				return s
			}
			pool.Put(p)
		}
	}
	return make([]T, n)
}

// release returns the cells to their pools; nothing may use them after.
func (c *aggCells) release() {
	for _, s := range c.sums {
		if poolable[sumCell](cap(s)) {
			sumPool.Put(&s)
		}
	}
	for _, s := range c.accs {
		if poolable[acc](cap(s)) {
			accPool.Put(&s)
		}
	}
	c.sums, c.accs = nil, nil
}

// count returns the number of values of cell i of field fi.
func (c *aggCells) count(fi, i int) int64 {
	if c.full {
		return c.accs[fi][i].n
	}
	return c.sums[fi][i].n
}

// needsFull reports whether aggs need more than counts and sums.
func needsFull(aggs []Agg) bool {
	return slices.ContainsFunc(aggs, func(a Agg) bool { return a == Min || a == Max || a == Last })
}

// scan is the read-only state of one query's aggregation and its cells.
type scan struct {
	from, to, width int64
	stride          int
	twins           []string // by index
	twinIdx         map[string]int
	fieldIdx        map[string]int
	cells           *aggCells
}

// scanState is one goroutine's scratch space: the twin mask of the last
// record's dictionary, reused while the next records have the same
// dictionary.
type scanState struct {
	mask            []int32
	any             bool
	offsets, values []byte // the last dictionary's buffers
}

// dictMask sets st.mask to the query's twin index of each entry of dict
// (-1 for twins not asked for). Entries mostly follow one another in the
// query's order (both list twins as they first sent points, or by name):
// an entry equal to the twin after the last entry's is taken without a
// lookup.
func (sc *scan) dictMask(st *scanState, dict *array.String) {
	offsets, values := dictBuffers(dict)
	if st.mask != nil && bytes.Equal(offsets, st.offsets) && bytes.Equal(values, st.values) {
		return
	}
	st.mask, st.any = st.mask[:0], false
	next := -1
	for i := range dict.Len() {
		name := dict.Value(i)
		j, ok := next, next >= 0 && next < len(sc.twins) && sc.twins[next] == name
		if !ok {
			j, ok = sc.twinIdx[name]
		}
		if ok {
			st.mask = append(st.mask, int32(j))
			st.any, next = true, j+1
		} else {
			st.mask = append(st.mask, -1)
			next = -1
		}
	}
	if st.mask == nil {
		st.mask = []int32{}
	}
	st.offsets, st.values = offsets, values
}

// dictBuffers returns the bytes of a string array's offsets and values,
// for comparing two dictionaries: equal bytes are equal entries.
func dictBuffers(dict *array.String) (offsets, values []byte) {
	offs := dict.ValueOffsets()
	if len(offs) == 0 {
		return nil, nil
	}
	data := dict.ValueBytes()
	// Offsets relative to the first, so that slices of one buffer
	// compare by content.
	first := offs[0]
	raw := arrow.Int32Traits.CastToBytes(offs)
	if first != 0 {
		rel := make([]int32, len(offs))
		for i, o := range offs {
			rel[i] = o - first
		}
		raw = arrow.Int32Traits.CastToBytes(rel)
	}
	return raw, data
}

// record aggregates the rows of rec with times in [tLo, tHi) into the
// cells.
func (sc *scan) record(st *scanState, rec arrow.RecordBatch, tLo, tHi int64) error {
	dictArr, ok := rec.Column(0).(*array.Dictionary)
	if !ok {
		return errors.New("telemetry: record without a twin dictionary")
	}
	sc.dictMask(st, dictArr.Dictionary().(*array.String))
	if !st.any {
		return nil
	}
	schema := rec.Schema()
	idx := dictArr.Indices().(*array.Int32).Int32Values()
	timeCol := rec.Column(1).Data()
	times := arrow.TimestampTraits.CastFromBytes(timeCol.Buffers()[1].Bytes())[timeCol.Offset():][:len(idx)]
	rows := rowRange{tLo: max(tLo, sc.from), tHi: min(tHi, sc.to), from: sc.from, width: sc.width, stride: sc.stride}
	for c := 2; c < int(rec.NumCols()); c++ {
		fi, ok := sc.fieldIdx[schema.Field(c).Name]
		if !ok {
			continue
		}
		col := rec.Column(c).(*array.Float64)
		vals := col.Float64Values()[:len(idx)]
		var valid []byte
		if col.NullN() > 0 {
			valid = col.NullBitmapBytes()
		}
		off := col.Data().Offset()
		if sc.cells.full {
			rows.accs(sc.cells.accs[fi], idx, times, vals, valid, off, st.mask)
		} else {
			rows.sums(sc.cells.sums[fi], idx, times, vals, valid, off, st.mask)
		}
	}
	return nil
}

// rowRange is what the kernels need to place a row: the times kept and
// the bucket layout.
type rowRange struct {
	tLo, tHi    int64 // rows with times in [tLo, tHi) are added
	from, width int64 // bucket b starts at from + b*width
	stride      int   // twins per bucket
}

// bucket returns the cells of the bucket of time t, which is in [tLo,
// tHi), and the part of [tLo, tHi) it covers.
func (rr *rowRange) bucket(t int64) (b int, lo, hi int64) {
	k := (t - rr.from) / rr.width
	lo, hi = rr.from+k*rr.width, rr.from+(k+1)*rr.width
	return int(k) * rr.stride, max(lo, rr.tLo), min(hi, rr.tHi)
}

// sums adds the kept rows' values to cells, for count, sum and avg. valid
// is the values' validity bitmap (nil when there are no nulls), off the
// column's offset in it.
//
// Rows arrive nearly in time order: the loop keeps the range of the
// current bucket, clipped to the kept range, and only a row outside it
// (a new bucket, or a row not kept) is placed the slow way.
func (rr rowRange) sums(cells []sumCell, idx []int32, times []arrow.Timestamp, vals []float64, valid []byte, off int, mask []int32) {
	if valid != nil {
		rr.sumsValid(cells, idx, times, vals, valid, off, mask)
		return
	}
	lo, hi := int64(1), int64(0) // the current bucket, none at first
	var row []sumCell
	times, vals = times[:len(idx)], vals[:len(idx)]
	for r, ti := range idx {
		if t := int64(times[r]); t < lo || t >= hi {
			if t < rr.tLo || t >= rr.tHi {
				continue
			}
			var b int
			b, lo, hi = rr.bucket(t)
			row = cells[b : b+rr.stride]
		}
		if tw := mask[ti]; tw >= 0 {
			c := &row[tw]
			c.n++
			c.sum += vals[r]
		}
	}
}

// sumsValid is sums for a column with nulls, kept apart so that the
// common loop over a column without them tests no bit.
func (rr rowRange) sumsValid(cells []sumCell, idx []int32, times []arrow.Timestamp, vals []float64, valid []byte, off int, mask []int32) {
	lo, hi := int64(1), int64(0)
	var row []sumCell
	times, vals = times[:len(idx)], vals[:len(idx)]
	for r, ti := range idx {
		if t := int64(times[r]); t < lo || t >= hi {
			if t < rr.tLo || t >= rr.tHi {
				continue
			}
			var b int
			b, lo, hi = rr.bucket(t)
			row = cells[b : b+rr.stride]
		}
		if tw := mask[ti]; tw >= 0 && bitutil.BitIsSet(valid, off+r) {
			c := &row[tw]
			c.n++
			c.sum += vals[r]
		}
	}
}

// accs adds the kept rows' values to cells, for every aggregate.
func (rr rowRange) accs(cells []acc, idx []int32, times []arrow.Timestamp, vals []float64, valid []byte, off int, mask []int32) {
	lo, hi := int64(1), int64(0)
	var row []acc
	times, vals = times[:len(idx)], vals[:len(idx)]
	for r, ti := range idx {
		t := int64(times[r])
		if t < lo || t >= hi {
			if t < rr.tLo || t >= rr.tHi {
				continue
			}
			var b int
			b, lo, hi = rr.bucket(t)
			row = cells[b : b+rr.stride]
		}
		tw := mask[ti]
		if tw < 0 || (valid != nil && !bitutil.BitIsSet(valid, off+r)) {
			continue
		}
		row[tw].add(vals[r], t)
	}
}

// add counts value v of time t in a.
func (a *acc) add(v float64, t int64) {
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

// Queries over at least parallelRows rows split their buckets among up to
// maxWorkers goroutines, in tasksPerWorker tasks per goroutine, so that a
// goroutine slowed down (by the rest of the machine) leaves its share to
// the others.
var parallelRows int64 = 1 << 20

const (
	maxWorkers     = 8
	tasksPerWorker = 4
)

// aggregate fills sc's cells from parts over nb buckets.
func (sc *scan) aggregate(ctx context.Context, parts []partRecord, nb int, rows int64) error {
	bounds := []int{0, nb}
	workers := 1
	if rows >= parallelRows {
		workers = min(runtime.GOMAXPROCS(0), nb, maxWorkers)
		bounds = sc.plan(parts, nb, workers)
	}
	tasks := len(bounds) - 1
	workers = min(workers, tasks)
	errs := make([]error, workers)
	var next atomic.Int64
	work := func(w int) {
		var st scanState
		for {
			k := int(next.Add(1) - 1)
			if k >= tasks {
				return
			}
			tLo, tHi := sc.from+int64(bounds[k])*sc.width, min(sc.to, sc.from+int64(bounds[k+1])*sc.width)
			for _, p := range parts {
				if p.hi <= tLo || p.lo >= tHi {
					continue
				}
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				if err := sc.record(&st, p.rec, tLo, tHi); err != nil {
					errs[w] = err
					return
				}
			}
		}
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(func() { work(w) })
	}
	work(0)
	wg.Wait()
	return errors.Join(errs...)
}

// plan splits the buckets [0, nb) among tasks for the given number of
// goroutines and returns the tasks' bounds: task k has buckets [bounds[k],
// bounds[k+1]). With partitions enough, tasks are runs of whole partitions
// of about equal rows (a task reads every record of each partition it
// overlaps, so a cut through a partition would have two tasks read it);
// with fewer, each goroutine gets an equal share of the buckets.
func (sc *scan) plan(parts []partRecord, nb, workers int) []int {
	rowsAt := map[int64]int64{}
	var total int64
	for _, p := range parts {
		rowsAt[p.lo] += p.rec.NumRows()
		total += p.rec.NumRows()
	}
	if len(rowsAt) < 2*workers || total == 0 {
		// Every goroutine reads the few partitions whole, for its rows.
		bounds := make([]int, workers+1)
		for k := range bounds {
			bounds[k] = nb * k / workers
		}
		return bounds
	}
	want := min(workers*tasksPerWorker, nb)
	starts := make([]int64, 0, len(rowsAt))
	for st := range rowsAt {
		starts = append(starts, st)
	}
	slices.Sort(starts)
	bounds := []int{0}
	var acc int64
	for i, st := range starts {
		if i > 0 && acc*int64(want) >= total*int64(len(bounds)) {
			// Cut before this partition, at the bucket holding its
			// start's first whole bucket.
			b := int((st - sc.from + sc.width - 1) / sc.width)
			if b > bounds[len(bounds)-1] && b < nb {
				bounds = append(bounds, b)
			}
		}
		acc += rowsAt[st]
	}
	return append(bounds, nb)
}

// series reads the cells out: one series per twin and field with at least
// one value, in twin then field order, each with its non-empty buckets in
// time order. The buckets of every series share one array, and so do the
// averages.
func (sc *scan) series(q *Query, twins, fields []string, nb int, parallel bool) []Series {
	stride, nf := sc.stride, len(fields)
	// Non-empty buckets per (twin, field), read bucket-major like the
	// cells are laid out.
	counts := make([]int32, stride*nf)
	for fi := range nf {
		for b := range nb {
			base := b * stride
			for ti := range stride {
				if sc.cells.count(fi, base+ti) > 0 {
					counts[ti*nf+fi]++
				}
			}
		}
	}
	order, forder := sortedIndexes(twins), sortedIndexes(fields)
	total, nseries := 0, 0
	for _, c := range counts {
		if c > 0 {
			total += int(c)
			nseries++
		}
	}
	// Values the buckets point to: the cells are reused by the next query.
	var vals valueArrays
	for _, ag := range q.Aggs {
		switch ag {
		case Count:
			vals.counts = make([]int64, total)
		case Min:
			vals.mins = make([]float64, total)
		case Max:
			vals.maxs = make([]float64, total)
		case Sum:
			vals.sums = make([]float64, total)
		case Last:
			vals.lasts = make([]float64, total)
		case Avg:
			vals.avgs = make([]float64, total)
		}
	}
	all := make([]Bucket, total)
	// Each (twin, field) gets its range of all, in series order.
	start := make([]int32, stride*nf)
	out := make([]Series, 0, nseries)
	n := 0
	for _, ti := range order {
		for _, fi := range forder {
			c := int(counts[ti*nf+fi])
			if c == 0 {
				continue
			}
			start[ti*nf+fi] = int32(n)
			out = append(out, Series{Twin: twins[ti], Field: fields[fi], Buckets: all[n : n+c : n+c]})
			n += c
		}
	}
	// Fill the buckets, bucket-major again; goroutines take disjoint
	// ranges of twins, so they write disjoint buckets.
	fill := func(tLo, tHi int) {
		next := slices.Clone(start[tLo*nf : tHi*nf])
		for fi := range nf {
			for b := range nb {
				st := time.Unix(0, sc.from+int64(b)*sc.width).UTC()
				base := b * stride
				for ti := tLo; ti < tHi; ti++ {
					i := base + ti
					if sc.cells.count(fi, i) == 0 {
						continue
					}
					k := (ti-tLo)*nf + fi
					j := next[k]
					next[k]++
					bk := &all[j]
					bk.Start = st
					if sc.cells.full {
						vals.set(bk, int(j), &sc.cells.accs[fi][i], q.Aggs)
					} else {
						c := &sc.cells.sums[fi][i]
						vals.set(bk, int(j), &acc{n: c.n, sum: c.sum}, q.Aggs)
					}
				}
			}
		}
	}
	workers := 1
	if parallel {
		workers = min(runtime.GOMAXPROCS(0), maxWorkers, max(stride/64, 1))
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(func() { fill(stride*w/workers, stride*(w+1)/workers) })
	}
	fill(0, stride/workers)
	wg.Wait()
	return out
}

// sortedIndexes returns the indexes of names in the order of the names.
func sortedIndexes(names []string) []int {
	order := make([]int, len(names))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmpStr(names[a], names[b]) })
	return order
}

// valueArrays hold the values of a query's buckets, one array per
// aggregate asked for, indexed like the buckets.
type valueArrays struct {
	counts                        []int64
	mins, maxs, sums, lasts, avgs []float64
}

// set sets bucket j, bk, to the aggregates of a in q's order.
func (v *valueArrays) set(bk *Bucket, j int, a *acc, aggs []Agg) {
	for _, ag := range aggs {
		switch ag {
		case Count:
			v.counts[j] = a.n
			bk.Count = &v.counts[j]
		case Min:
			v.mins[j] = a.min
			bk.Min = &v.mins[j]
		case Max:
			v.maxs[j] = a.max
			bk.Max = &v.maxs[j]
		case Sum:
			v.sums[j] = a.sum
			bk.Sum = &v.sums[j]
		case Last:
			v.lasts[j] = a.last
			bk.Last = &v.lasts[j]
		case Avg:
			v.avgs[j] = a.sum / float64(a.n)
			bk.Avg = &v.avgs[j]
		}
	}
}
