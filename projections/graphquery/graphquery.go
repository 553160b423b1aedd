// Package graphquery runs the query language (projections/query) over the
// live twin graph (projections/twingraph): an adapter that makes a twin
// graph snapshot a query.Graph, and a Runner that pages a query over one
// snapshot, pinning it between pages so that no page skips or repeats a row
// while writes go on.
package graphquery

import (
	"context"
	"encoding/json"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/projections/query"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// Source hands out snapshots of the twin graph; *twingraph.Graph is one.
type Source interface {
	Snapshot() *twingraph.Snapshot
}

var _ Source = (*twingraph.Graph)(nil)

// Options configure a Runner. The zero value means the defaults.
type Options struct {
	// PinTTL is how long a snapshot stays pinned after its last page was
	// served, for the next page. Default 5 minutes.
	PinTTL time.Duration
	// MaxPinned bounds the pinned snapshots; the least recently used goes
	// first. Default 256.
	MaxPinned int
	// Query holds the execution defaults (timeout, memory budget).
	Query query.Options
	// Plans is the number of query shapes whose plans are kept for reuse
	// (query.Cache). Default query.DefaultCacheSize; negative disables
	// the cache.
	Plans int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Runner runs queries against the latest snapshot and continues paged
// queries on the snapshot their first page read. It is safe for concurrent
// use.
type Runner struct {
	src   Source
	opts  Options
	plans *query.Cache // nil when disabled
	cols  *twingraph.NumberColumns
	mu    struct {
		sync.Mutex
		pinned map[uint64]*pin
	}
}

type pin struct {
	snap *twingraph.Snapshot
	used time.Time
}

// New returns a Runner over src.
func New(src Source, opts Options) *Runner {
	if opts.PinTTL <= 0 {
		opts.PinTTL = 5 * time.Minute
	}
	if opts.MaxPinned <= 0 {
		opts.MaxPinned = 256
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Runner{src: src, opts: opts, cols: twingraph.NewNumberColumns()}
	if opts.Plans >= 0 {
		r.plans = query.NewCache(opts.Plans)
	}
	r.mu.pinned = map[uint64]*pin{}
	return r
}

// Request is one page request, as POST /query carries it.
type Request struct {
	// Query is the query text; ignored when ContinuationToken is set.
	Query string
	// ContinuationToken continues a paged query.
	ContinuationToken string
	// PageSize is max-items-per-page; 0 means query.DefaultPageSize.
	PageSize int
	// Params binds @name placeholders.
	Params map[string]any
	// Visible, when set, hides the twins it returns false for (by id and
	// model), and the relationships touching them, from every row, count
	// and page (query.Options.Visible). A continuation must carry the same
	// predicate as its first page.
	Visible func(id, model string) bool
}

// Run returns one page. A first page reads the latest snapshot; a
// continuation reads the snapshot the first page read, which stays pinned
// for Options.PinTTL after each page.
func (r *Runner) Run(ctx context.Context, req Request) (*query.Result, error) {
	opts := r.opts.Query
	opts.PageSize = req.PageSize
	opts.Params = req.Params
	if vis := req.Visible; vis != nil {
		opts.Visible = func(t query.Twin) bool { return vis(t.ID(), t.Model()) }
	}
	text := req.Query
	var snap *twingraph.Snapshot
	if req.ContinuationToken != "" {
		tok, err := query.DecodeToken(req.ContinuationToken)
		if err != nil {
			return nil, err
		}
		text, opts.Offset, opts.Params = tok.Query, tok.Offset, tok.Params
		if snap = r.pinned(tok.Position); snap == nil {
			return nil, engine.Errorf(engine.KindInvalid, query.CodeBadToken, "the continuation token has expired (its snapshot was released); run the query again")
		}
	} else {
		if text == "" {
			return nil, engine.Errorf(engine.KindInvalid, query.CodeQueryError, "the query is empty; start it with SELECT")
		}
		snap = r.src.Snapshot()
	}
	res, err := r.plans.Run(ctx, graph{snap, r.cols}, text, opts)
	if err != nil {
		return nil, err
	}
	if res.ContinuationToken != "" {
		r.pin(snap)
	}
	return res, nil
}

// pinned returns the snapshot at pos, if pinned or still the latest.
func (r *Runner) pinned(pos uint64) *twingraph.Snapshot {
	now := r.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
	if p, ok := r.mu.pinned[pos]; ok {
		p.used = now
		return p.snap
	}
	if s := r.src.Snapshot(); s.Position() == pos {
		return s
	}
	return nil
}

func (r *Runner) pin(s *twingraph.Snapshot) {
	now := r.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
	if p, ok := r.mu.pinned[s.Position()]; ok {
		p.used = now
		return
	}
	for len(r.mu.pinned) >= r.opts.MaxPinned {
		var oldest uint64
		var t time.Time
		for pos, p := range r.mu.pinned {
			if t.IsZero() || p.used.Before(t) {
				oldest, t = pos, p.used
			}
		}
		delete(r.mu.pinned, oldest)
	}
	r.mu.pinned[s.Position()] = &pin{snap: s, used: now}
}

func (r *Runner) expireLocked(now time.Time) {
	for pos, p := range r.mu.pinned {
		if now.Sub(p.used) > r.opts.PinTTL {
			delete(r.mu.pinned, pos)
		}
	}
}

// Run runs one page of text over the latest snapshot of src. It does not
// pin; use a Runner to serve continuation tokens.
func Run(ctx context.Context, src Source, text string, opts query.Options) (*query.Result, error) {
	return query.Run(ctx, Wrap(src.Snapshot()), text, opts)
}

// Wrap returns s as a query.Graph.
func Wrap(s *twingraph.Snapshot) query.Graph { return graph{s: s} }

// graph is a snapshot as a query.Graph; with cols, the Runner's column
// cache, it is a query.NumberScanner.
type graph struct {
	s    *twingraph.Snapshot
	cols *twingraph.NumberColumns
}

// TwinsOfModelWhere implements query.NumberScanner through the column
// cache, for a model holding at least a sixteenth of the twins: reading
// the cached columns of every leaf of the twins beats reading each twin of
// the model then.
func (g graph) TwinsOfModelWhere(model, prop string, test query.NumberTest) (iter.Seq[query.Twin], bool) {
	op, ok := cmpOps[test.Op]
	if g.cols == nil || !ok || !g.cols.Worth(g.s, model) {
		return nil, false
	}
	cmp := twingraph.NumberCmp{Op: op, C: test.C}
	return func(yield func(query.Twin) bool) {
		for t := range g.cols.Scan(g.s, model, prop, cmp) {
			if !yield(twin{t}) {
				return
			}
		}
	}, true
}

// cmpOps are the column scan's comparisons of the query's.
var cmpOps = map[string]twingraph.CmpOp{"<": twingraph.Less, "<=": twingraph.LessEq, ">": twingraph.Greater, ">=": twingraph.GreaterEq}

var (
	_ query.Graph           = graph{}
	_ query.ModelsVersioner = graph{}
	_ query.SeekingGraph    = graph{}
	_ query.NumberScanner   = graph{}
)

func (g graph) Position() uint64 { return g.s.Position() }

func (g graph) Twin(id string) (query.Twin, bool) {
	t, ok := g.s.Twin(id)
	if !ok {
		return nil, false
	}
	return twin{t}, true
}

// Seeker implements query.SeekingGraph.
func (g graph) Seeker() query.Seeker { return seeker{g.s.TwinSeeker()} }

type seeker struct{ k *twingraph.TwinSeeker }

// Follow implements the optional query.Seeker shortcut: a relationship of
// the snapshot leads to its target without a lookup when its hint holds.
func (s seeker) Follow(r query.Relationship, id string) (query.Twin, bool) {
	if x, ok := r.(rel); ok && x.r.Target == id {
		t, ok := s.k.Target(x.r)
		if !ok {
			return nil, false
		}
		return twin{t}, true
	}
	return s.Twin(id)
}

// Release implements the optional release of a query.Seeker.
func (s seeker) Release() { s.k.Release() }

func (s seeker) Twin(id string) (query.Twin, bool) {
	t, ok := s.k.Twin(id)
	if !ok {
		return nil, false
	}
	return twin{t}, true
}

func (g graph) Twins() iter.Seq[query.Twin] {
	return func(yield func(query.Twin) bool) {
		for t := range g.s.Twins() {
			if !yield(twin{t}) {
				return
			}
		}
	}
}

func (g graph) TwinsOfModel(model string) iter.Seq[query.Twin] {
	return func(yield func(query.Twin) bool) {
		for t := range g.s.TwinsOfModel(model, true) {
			if !yield(twin{t}) {
				return
			}
		}
	}
}

func (g graph) Outgoing(src, name string) iter.Seq[query.Relationship] {
	return func(yield func(query.Relationship) bool) {
		for r := range g.s.Outgoing(src, name) {
			if !yield(rel{r}) {
				return
			}
		}
	}
}

func (g graph) Incoming(target string) iter.Seq[query.Relationship] {
	return func(yield func(query.Relationship) bool) {
		for r := range g.s.Incoming(target) {
			if !yield(rel{r}) {
				return
			}
		}
	}
}

func (g graph) Models() []string { return g.s.Models().IDs() }

// ModelsVersion implements query.ModelsVersioner: the version of the
// models stream, which every change of the models moves.
func (g graph) ModelsVersion() uint64 { return g.s.ModelsVersion() }

func (g graph) Descendants(model string) []string { return g.s.Models().Descendants(model) }

// twin is a one-pointer struct, so boxing it in query.Twin does not
// allocate.
type twin struct{ t *twingraph.Twin }

func (x twin) ID() string    { return x.t.ID }
func (x twin) Model() string { return x.t.Model }
func (x twin) ETag() string  { return x.t.ETag() }
func (x twin) AppendJSON(dst []byte) []byte {
	return x.t.AppendJSON(slices.Grow(dst, x.t.JSONSize()))
}

// Prefetch implements query.Prefetcher: it reads the first byte of the
// twin's id and of each property value.
func (x twin) Prefetch() uint { return x.t.Prefetch() }

func (x twin) Property(name string) (any, bool) {
	if p := prop(&x.t.Section, name); p != nil {
		return decode(text(p.Value)), true
	}
	if c, ok := x.t.Component(name); ok {
		m := make(map[string]any, len(c.Props)+1)
		for i := range c.Props {
			m[c.Props[i].Name] = decode(text(c.Props[i].Value))
		}
		m["$metadata"] = sectionMeta(&c.Section, "")
		return m, true
	}
	return nil, false
}

func (x twin) Metadata() map[string]any { return sectionMeta(&x.t.Section, x.t.Model) }

var (
	_ query.Prefetcher   = twin{}
	_ query.NumberReader = twin{}
	_ query.Adjacency    = twin{}
)

// Number implements query.NumberReader: a root property holding a JSON
// number, parsed from its stored text.
func (x twin) Number(name string) (float64, bool) {
	p := prop(&x.t.Section, name)
	if p == nil {
		return 0, false
	}
	return twingraph.PropNumber(p)
}

// prop returns the property name of s, or nil. A twin has a few
// properties: comparing each one's name by length first reads the bytes of
// at most the names as long as name, where a binary search reads a name at
// every step, each likely a cache miss in a scan over many twins.
func prop(s *twingraph.Section, name string) *twingraph.Prop {
	if len(s.Props) > 16 {
		p, _ := s.Prop(name)
		return p
	}
	for i := range s.Props {
		if s.Props[i].Name == name {
			return &s.Props[i]
		}
	}
	return nil
}

// Outgoing implements query.Adjacency over the twin's own relationship
// list, as Snapshot.Outgoing reads it.
//
// It picks the relationships named name a chunk at a time before yielding
// any of them: the picking loop reads only each one's name, so the cache
// misses of a twin's relationships, which lie apart on the heap, overlap
// instead of each waiting for the one before it.
func (x twin) Outgoing(name string) iter.Seq[query.Relationship] {
	return func(yield func(query.Relationship) bool) {
		var picked [32]*twingraph.Relationship
		for out := x.t.Out; len(out) > 0; {
			chunk := out[:min(len(out), len(picked))]
			out = out[len(chunk):]
			n := 0
			for _, r := range chunk {
				if r.Name == name || name == "" {
					picked[n] = r
					n++
				}
			}
			for _, r := range picked[:n] {
				if !yield(rel{r}) {
					return
				}
			}
		}
	}
}

// Incoming implements query.Adjacency, as Snapshot.Incoming reads it.
func (x twin) Incoming() iter.Seq[query.Relationship] {
	return func(yield func(query.Relationship) bool) {
		for _, r := range x.t.In {
			if !yield(rel{r}) {
				return
			}
		}
	}
}

func sectionMeta(s *twingraph.Section, model string) map[string]any {
	m := make(map[string]any, len(s.Props)+2)
	if model != "" {
		m["$model"] = model
	}
	m["$lastUpdateTime"] = twingraph.FormatTime(s.Updated)
	for i := range s.Props {
		p := &s.Props[i]
		pm := map[string]any{"lastUpdateTime": twingraph.FormatTime(p.Updated)}
		if p.SourceTime != "" {
			pm["sourceTime"] = p.SourceTime
		}
		m[p.Name] = pm
	}
	return m
}

type rel struct{ r *twingraph.Relationship }

func (x rel) ID() string                   { return x.r.ID }
func (x rel) Source() string               { return x.r.Source }
func (x rel) Target() string               { return x.r.Target }
func (x rel) Name() string                 { return x.r.Name }
func (x rel) ETag() string                 { return x.r.ETag() }
func (x rel) AppendJSON(dst []byte) []byte { return x.r.AppendJSON(dst) }

func (x rel) Property(name string) (any, bool) {
	m, err := x.r.PropsMap()
	if err != nil {
		return nil, false
	}
	v, ok := m[name]
	if !ok {
		return nil, false
	}
	return normalize(v), true
}

// text views a property's stored JSON as a string without copying:
// stored values are immutable.
func text[T string | []byte](v T) string {
	switch x := any(v).(type) {
	case string:
		return x
	case []byte:
		if len(x) == 0 {
			return ""
		}
		return unsafe.String(&x[0], len(x))
	}
	return ""
}

// decode turns a property's canonical JSON into a query value.
func decode(b string) any {
	if len(b) == 0 {
		return nil
	}
	switch c := b[0]; {
	case c == '"':
		inner := b[1 : len(b)-1]
		if strings.IndexByte(inner, '\\') < 0 {
			return inner
		}
	case c == '-' || c >= '0' && c <= '9':
		if f, err := strconv.ParseFloat(b, 64); err == nil {
			return f
		}
	case c == 't' && len(b) == 4:
		return true
	case c == 'f' && len(b) == 5:
		return false
	case c == 'n' && len(b) == 4:
		return nil
	}
	var v any
	if json.Unmarshal([]byte(b), &v) != nil {
		return nil
	}
	return v
}

// normalize turns json.Number (as twingraph decodes) into float64.
func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}
