package telemetry

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
)

var _ engine.Projection = (*Store)(nil)

// Options configures a Store. The zero value is valid.
type Options struct {
	// Partition is the width of a time partition. Default 1 hour.
	Partition time.Duration
	// ChunkRows is how many rows an open chunk gathers before it is sealed
	// into an Arrow record. Default 65,536.
	ChunkRows int
	// Retention drops partitions that ended more than this before the
	// newest point. Default 0: keep everything.
	Retention time.Duration
}

// Validate reports invalid options.
func (o *Options) Validate() error {
	if o.Partition < 0 || o.ChunkRows < 0 || o.Retention < 0 {
		return errors.New("telemetry: negative option")
	}
	return nil
}

// Column names every record has; field columns follow them.
const (
	ColTwin = "twin"
	ColTime = "time"
)

var (
	twinType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	timeType = &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}
)

// Store is the telemetry history. Apply is called from one goroutine;
// queries and exports may run concurrently with it.
type Store struct {
	opts Options
	mem  memory.Allocator

	mu struct {
		sync.Mutex
		pos    uint64
		newest int64
		points uint64
		models map[string]*series
		twins  map[string]twinInfo // the twins whose models are known
		// modelIDs interns the model ids of twins: a large graph has
		// many twins and few models.
		modelIDs map[string]string
		scratch  []member // a point's members, reused
		header   []member // a telemetry event's members, reused
		chunks   uint32   // chunks opened, the last one's gen
		// cur is the partition the last point went to (nil when retention
		// may have dropped it): points in a row mostly share one.
		cur struct {
			model string
			start int64
			p     *partition
		}
	}
}

// twinInfo is what the store knows of a twin: its model, and its row in
// the dictionary of the chunk it was last recorded in (gen, idx), so that
// the twin's next point in that chunk needs no other lookup. It is held by
// value: a large graph has one per twin.
type twinInfo struct {
	model string
	gen   uint32
	idx   int32
}

// series is one model's history.
type series struct {
	parts map[int64]*partition // by start time
}

type partition struct {
	start  int64
	sealed []arrow.RecordBatch
	open   *chunk
}

// chunk gathers rows before they become a record.
type chunk struct {
	gen    uint32 // unique among the store's chunks (for 2^32 chunks)
	dict   map[string]int32
	names  []string
	twins  []int32
	times  []int64
	fields map[string]*column
	rows   int
	// last are the root fields of the chunk's last point, in its order:
	// the next point mostly has the same ones.
	last []fieldRef
}

type fieldRef struct {
	name string
	col  *column
}

type column struct {
	vals  []float64
	valid []bool
}

// New returns an empty store.
func New(opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Partition == 0 {
		opts.Partition = time.Hour
	}
	if opts.ChunkRows == 0 {
		opts.ChunkRows = 1 << 16
	}
	s := &Store{opts: opts, mem: memory.NewGoAllocator()}
	s.mu.models = map[string]*series{}
	s.mu.twins = map[string]twinInfo{}
	s.mu.modelIDs = map[string]string{}
	return s, nil
}

// Position returns the position of the last applied event.
func (s *Store) Position() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.pos
}

// Points returns the number of points kept.
func (s *Store) Points() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.points
}

// Apply implements engine.Projection: it records the telemetry points of
// batch and follows twins' models. Malformed telemetry bodies are skipped
// (the write path validated them; history keeps what it can read).
func (s *Store) Apply(batch []event.Event) error {
	if len(batch) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range batch {
		if err := s.applyLocked(&batch[i]); err != nil {
			return err
		}
	}
	s.mu.pos = batch[len(batch)-1].Position
	s.retainLocked()
	return nil
}

func (s *Store) applyLocked(e *event.Event) error {
	switch e.Type {
	case twingraph.TypeTelemetry:
		if e.SchemaVersion == twingraph.SchemaVersion {
			ms, twin, component, sourceTime, body, ok := decodeTelemetry(s.mu.header, e.Payload)
			s.mu.header = ms[:0]
			if ok {
				s.pointLocked(twin, component, sourceTime, e.Time, body)
				return nil
			}
		}
		var p twingraph.Telemetry
		if err := twingraph.Decode(e, &p); err != nil {
			return nil
		}
		s.pointLocked(p.Twin, p.Component, p.SourceTime, e.Time, p.Body)
	case twingraph.TypeTelemetryBatch:
		return twingraph.DecodeTelemetryBatchRaw(e.Payload, func(_ int, p *twingraph.RawTelemetryPoint) error {
			// Views of the payload: pointLocked copies the twin id and
			// field names it keeps.
			s.pointLocked(unsafe.String(unsafe.SliceData(p.Twin), len(p.Twin)), unsafe.String(unsafe.SliceData(p.Component), len(p.Component)),
				unsafe.String(unsafe.SliceData(p.SourceTime), len(p.SourceTime)), e.Time, p.Body)
			return nil
		})
	case twingraph.TypeTwinCreated, twingraph.TypeTwinReplaced:
		var st struct {
			ID    string `json:"id"`
			Model string `json:"model"`
		}
		if json.Unmarshal(e.Payload, &st) == nil && st.ID != "" {
			s.setModelLocked(st.ID, st.Model)
		}
	case twingraph.TypeTwinPatched:
		if id, model, ok := patchedModel(e); ok && model != "" {
			s.setModelLocked(id, model)
		}
	case twingraph.TypeTwinDeleted:
		var r twingraph.TwinRef
		if json.Unmarshal(e.Payload, &r) == nil {
			delete(s.mu.twins, r.ID)
		}
	}
	return nil
}

// setModelLocked records a twin's model. twin and model may view an
// event's payload: it keeps copies.
func (s *Store) setModelLocked(twin, model string) {
	if info, ok := s.mu.twins[twin]; ok && info.model == model {
		return
	}
	m, ok := s.mu.modelIDs[model]
	if !ok {
		m = strings.Clone(model)
		s.mu.modelIDs[m] = m
	}
	s.mu.twins[strings.Clone(twin)] = twinInfo{model: m}
}

// patchedModel reads the twin id and new model of a twin.patched event
// without decoding the rest: they are its first two strings in the binary
// layout. They view the payload.
func patchedModel(e *event.Event) (id, model string, ok bool) {
	if e.SchemaVersion != twingraph.PatchedSchemaVersion {
		var p twingraph.TwinPatched
		if twingraph.Decode(e, &p) != nil {
			return "", "", false
		}
		return p.ID, p.Model, true
	}
	b := e.Payload
	var strs [2]string
	for i := range strs {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return "", "", false
		}
		strs[i] = unsafe.String(unsafe.SliceData(b[k:]), int(n))
		b = b[k+int(n):]
	}
	return strs[0], strs[1], true
}

func (s *Store) pointLocked(twin, component, sourceTime string, evTime int64, body []byte) {
	t := evTime
	if sourceTime != "" {
		if st, err := twingraph.ParseSourceTime(sourceTime); err == nil {
			t = st
		}
	}
	vals, ok := scanObject(s.mu.scratch[:0], body)
	s.mu.scratch = vals[:0]
	if !ok || len(vals) == 0 {
		return
	}
	info, known := s.mu.twins[twin]
	model := info.model
	width := int64(s.opts.Partition)
	start := floorDiv(t, width) * width
	p := s.mu.cur.p
	if p == nil || s.mu.cur.start != start || s.mu.cur.model != model {
		ser := s.mu.models[model]
		if ser == nil {
			ser = &series{parts: map[int64]*partition{}}
			s.mu.models[model] = ser
		}
		if p = ser.parts[start]; p == nil {
			p = &partition{start: start}
			ser.parts[start] = p
		}
		s.mu.cur.model, s.mu.cur.start, s.mu.cur.p = model, start, p
	}
	if p.open == nil {
		s.mu.chunks++
		if s.mu.chunks == 0 {
			// The generations wrapped: no twin's row may be taken for
			// one in a new chunk.
			for k, v := range s.mu.twins {
				v.gen = 0
				s.mu.twins[k] = v
			}
			s.mu.chunks = 1
		}
		p.open = &chunk{gen: s.mu.chunks, dict: map[string]int32{}, fields: map[string]*column{}}
	}
	c := p.open
	var idx int32
	if known && info.gen == c.gen {
		idx = info.idx
	} else {
		var ok bool
		if idx, ok = c.dict[twin]; !ok {
			twin = strings.Clone(twin) // it may view an event's payload
			idx = int32(len(c.names))
			c.dict[twin] = idx
			c.names = append(c.names, twin)
		}
		if known {
			// Keyed by the chunk's copy of the id: twin may view a payload.
			info.gen, info.idx = c.gen, idx
			s.mu.twins[c.names[idx]] = info
		}
	}
	row := c.rows
	c.twins = append(c.twins, idx)
	c.times = append(c.times, t)
	c.rows++
	k := 0 // numeric members seen
	for i := range vals {
		m := &vals[i]
		if !m.num {
			continue
		}
		var col *column
		if component != "" {
			col = c.fields[component+"."+string(m.name)]
		} else if k < len(c.last) && c.last[k].name == string(m.name) {
			col = c.last[k].col
		} else {
			col = c.fields[string(m.name)]
		}
		if col == nil {
			name := string(m.name)
			if component != "" {
				name = component + "." + name // a new string: component may view a payload
			}
			col = &column{vals: make([]float64, row, max(row+1, 64)), valid: make([]bool, row, max(row+1, 64))}
			c.fields[name] = col
		}
		if component == "" {
			if k == len(c.last) {
				c.last = append(c.last, fieldRef{})
			}
			if c.last[k].col != col {
				c.last[k] = fieldRef{name: string(m.name), col: col}
			}
			k++
		}
		if len(col.vals) > row {
			// A repeated member: the last one wins, as in a JSON object.
			col.vals[row], col.valid[row] = m.v, true
			continue
		}
		for len(col.vals) < row {
			col.vals = append(col.vals, 0)
			col.valid = append(col.valid, false)
		}
		col.vals = append(col.vals, m.v)
		col.valid = append(col.valid, true)
	}
	s.mu.points++
	s.mu.newest = max(s.mu.newest, t)
	if c.rows >= s.opts.ChunkRows {
		p.seal(s.mem)
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// seal turns the open chunk into an Arrow record: twin, time, then the
// fields in name order.
func (p *partition) seal(mem memory.Allocator) {
	c := p.open
	if c == nil || c.rows == 0 {
		return
	}
	p.open = nil
	names := make([]string, 0, len(c.fields))
	for n := range c.fields {
		names = append(names, n)
	}
	slices.Sort(names)
	fields := []arrow.Field{{Name: ColTwin, Type: twinType}, {Name: ColTime, Type: timeType}}
	cols := make([]arrow.Array, 0, 2+len(names))

	db := array.NewStringBuilder(mem)
	db.AppendValues(c.names, nil)
	dict := db.NewArray()
	ib := array.NewInt32Builder(mem)
	ib.AppendValues(c.twins, nil)
	idx := ib.NewArray()
	cols = append(cols, array.NewDictionaryArray(twinType, idx, dict))
	idx.Release()
	dict.Release()
	tb := array.NewTimestampBuilder(mem, timeType)
	for _, t := range c.times {
		tb.Append(arrow.Timestamp(t))
	}
	cols = append(cols, tb.NewArray())
	for _, n := range names {
		col := c.fields[n]
		for len(col.vals) < c.rows {
			col.vals = append(col.vals, 0)
			col.valid = append(col.valid, false)
		}
		fb := array.NewFloat64Builder(mem)
		fb.AppendValues(col.vals, col.valid)
		cols = append(cols, fb.NewArray())
		fields = append(fields, arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(c.rows))
	for _, a := range cols {
		a.Release()
	}
	p.sealed = append(p.sealed, rec)
}

// retainLocked drops partitions that ended before the retention window.
func (s *Store) retainLocked() {
	if s.opts.Retention <= 0 {
		return
	}
	cutoff := s.mu.newest - int64(s.opts.Retention)
	for _, ser := range s.mu.models {
		for start, p := range ser.parts {
			if start+int64(s.opts.Partition) <= cutoff {
				for _, r := range p.sealed {
					s.mu.points -= uint64(r.NumRows())
					r.Release()
				}
				if p.open != nil {
					s.mu.points -= uint64(p.open.rows)
				}
				delete(ser.parts, start)
				s.mu.cur.p = nil
			}
		}
	}
}

// Models returns the models with telemetry, in order ("" is twins whose
// model was unknown).
func (s *Store) Models() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.mu.models))
	for m := range s.mu.models {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// records seals and returns (retained; the caller releases them) the
// records of the partitions overlapping [from, to) of the given models
// (every model when models is nil), in model then time order.
func (s *Store) records(models []string, from, to int64) []arrow.RecordBatch {
	parts := s.partRecords(models, from, to)
	out := make([]arrow.RecordBatch, len(parts))
	for i, p := range parts {
		out[i] = p.rec
	}
	return out
}

// partRecord is a sealed record and the time range of its partition,
// which holds every row's time.
type partRecord struct {
	rec    arrow.RecordBatch
	lo, hi int64
}

// partRecords is records with each record's partition range.
func (s *Store) partRecords(models []string, from, to int64) []partRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	if models == nil {
		for m := range s.mu.models {
			models = append(models, m)
		}
		slices.Sort(models)
	}
	width := int64(s.opts.Partition)
	var out []partRecord
	for _, m := range models {
		ser := s.mu.models[m]
		if ser == nil {
			continue
		}
		starts := make([]int64, 0, len(ser.parts))
		for st := range ser.parts {
			if st < to && st+width > from {
				starts = append(starts, st)
			}
		}
		slices.Sort(starts)
		for _, st := range starts {
			p := ser.parts[st]
			p.seal(s.mem)
			for _, r := range p.sealed {
				r.Retain()
				out = append(out, partRecord{rec: r, lo: st, hi: st + width})
			}
		}
	}
	return out
}

// ModelOf returns the model of a twin as the store knows it.
func (s *Store) ModelOf(twin string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if info, ok := s.mu.twins[twin]; ok {
		return info.model, true
	}
	return "", false
}

func (s *Store) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("telemetry store at %d: %d points in %d models", s.mu.pos, s.mu.points, len(s.mu.models))
}
