package telemetry

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Export selects what WriteParquet and WriteIPC write.
type Export struct {
	// Model is the model whose history is written ("" for twins of
	// unknown model).
	Model string
	// From and To bound the partitions written; zero means unbounded.
	// Whole partitions are written: rows may lie slightly outside.
	From, To int64
}

// unified returns the model's records over the range, each widened to one
// schema (twin, time, then every field any of them has, in name order,
// null where a record lacks it). The caller releases them.
func (s *Store) unified(x Export) (*arrow.Schema, []arrow.RecordBatch) {
	from, to := x.From, x.To
	if to == 0 {
		to = math.MaxInt64
	}
	if from == 0 {
		from = math.MinInt64
	}
	recs := s.records([]string{x.Model}, from, to)
	seen := map[string]bool{}
	var names []string
	for _, r := range recs {
		for _, f := range r.Schema().Fields()[2:] {
			if !seen[f.Name] {
				seen[f.Name] = true
				names = append(names, f.Name)
			}
		}
	}
	slices.Sort(names)
	fields := []arrow.Field{{Name: ColTwin, Type: twinType}, {Name: ColTime, Type: timeType}}
	for _, n := range names {
		fields = append(fields, arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	schema := arrow.NewSchema(fields, nil)
	out := make([]arrow.RecordBatch, 0, len(recs))
	for _, r := range recs {
		cols := []arrow.Array{r.Column(0), r.Column(1)}
		var made []arrow.Array
		rs := r.Schema()
		for _, n := range names {
			if i := rs.FieldIndices(n); len(i) > 0 {
				cols = append(cols, r.Column(i[0]))
				continue
			}
			null := array.MakeArrayOfNull(s.mem, arrow.PrimitiveTypes.Float64, int(r.NumRows()))
			made = append(made, null)
			cols = append(cols, null)
		}
		out = append(out, array.NewRecordBatch(schema, cols, r.NumRows()))
		for _, a := range made {
			a.Release()
		}
		r.Release()
	}
	return schema, out
}

// WriteIPC writes a model's history to w as an Arrow IPC stream.
func (s *Store) WriteIPC(ctx context.Context, w io.Writer, x Export) (rows int64, err error) {
	schema, recs := s.unified(x)
	defer release(recs)
	iw := ipc.NewWriter(w, ipc.WithSchema(schema), ipc.WithAllocator(s.mem))
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			iw.Close()
			return rows, err
		}
		if err := iw.Write(r); err != nil {
			iw.Close()
			return rows, fmt.Errorf("write arrow stream: %w", err)
		}
		rows += r.NumRows()
	}
	if err := iw.Close(); err != nil {
		return rows, fmt.Errorf("close arrow stream: %w", err)
	}
	return rows, nil
}

// WriteParquet writes a model's history to w as one Parquet file, zstd
// compressed, with the Arrow schema stored so readers get the same types
// back.
func (s *Store) WriteParquet(ctx context.Context, w io.Writer, x Export) (rows int64, err error) {
	schema, recs := s.unified(x)
	defer release(recs)
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithDictionaryDefault(true))
	fw, err := pqarrow.NewFileWriter(schema, w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return 0, fmt.Errorf("create parquet writer: %w", err)
	}
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			fw.Close()
			return rows, err
		}
		if err := fw.WriteBuffered(r); err != nil {
			fw.Close()
			return rows, fmt.Errorf("write parquet: %w", err)
		}
		rows += r.NumRows()
	}
	if err := fw.Close(); err != nil {
		return rows, fmt.Errorf("close parquet: %w", err)
	}
	return rows, nil
}

func release(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
}
