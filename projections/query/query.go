package query

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"time"
	"unsafe"

	"github.com/twinlog/twinlog/engine"
)

// Paging and budget defaults.
const (
	// DefaultPageSize is the page size when Options.PageSize is 0.
	DefaultPageSize = 100
	// MaxPageSize caps Options.PageSize (ADT: 1,000 items a page).
	MaxPageSize = 1000
	// DefaultTimeout is the time budget when Options.Timeout is 0 (ADT:
	// 60 seconds).
	DefaultTimeout = 60 * time.Second
	// DefaultMaxMemory is the memory budget when Options.MaxMemory is 0.
	DefaultMaxMemory = 256 << 20
)

// Options tune one execution. The zero value means the defaults.
type Options struct {
	// PageSize is the most rows a page holds. Default DefaultPageSize,
	// capped at MaxPageSize.
	PageSize int
	// Offset is the number of result rows to skip (from a continuation
	// token). Default 0.
	Offset int
	// Timeout bounds execution. Default DefaultTimeout.
	Timeout time.Duration
	// MaxMemory bounds the bytes of rows held for ORDER BY, GROUP BY and
	// DISTINCT. Default DefaultMaxMemory.
	MaxMemory int64
	// Params binds @name placeholders: nil, bool, int, float64, string or
	// []string. Default none.
	Params map[string]any
	// Visible, when set, hides every twin for which it returns false, and
	// every relationship with such a twin at either end, as if they did not
	// exist: before filters, so that COUNT, TOP and paging see only visible
	// rows. It is how access control filters queries. Default nil: every
	// twin is visible.
	Visible func(Twin) bool
}

// Result is one page of a query's rows.
type Result struct {
	// Rows are the page's rows, each one JSON value.
	Rows []json.RawMessage
	// ContinuationToken fetches the next page; "" on the last page.
	ContinuationToken string
	// Position is the log position of the graph the page was read from.
	Position uint64
	// Charge is the cost in query units: 1 plus one per 1,000 twins and
	// relationships visited and one per 100 rows returned.
	Charge float64

	chunks [][]byte // the buffers Rows are in, for Release
	page   *page    // the recycled room for Rows and chunks, for Release
}

// Release hands the buffers of the page's rows back for later queries to
// encode theirs in: Rows must not be used after it, nor any row kept from
// it. Calling it is optional (a page not released is left to the garbage
// collector) and a second call does nothing. POST /query releases each
// page once its answer is written.
func (r *Result) Release() {
	for _, c := range r.chunks {
		putChunk(c)
	}
	if r.page != nil {
		putPage(r.page)
	}
	r.chunks, r.Rows, r.page = nil, nil, nil
}

// Token is the content of a continuation token: the query, the snapshot it
// reads and how many rows were already returned.
type Token struct {
	Query    string         `json:"q"`
	Position uint64         `json:"p"`
	Offset   int            `json:"o"`
	Params   map[string]any `json:"a,omitempty"`
}

// Encode returns the opaque token text.
func (t Token) Encode() string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeToken parses a token made by Token.Encode.
func DecodeToken(s string) (Token, error) {
	var t Token
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &t) != nil || t.Query == "" || t.Offset < 0 {
		return Token{}, engine.Errorf(engine.KindInvalid, CodeBadToken, "the continuation token is not valid; run the query again without it")
	}
	return t, nil
}

// Run parses text and returns one page of its rows over g.
func Run(ctx context.Context, g Graph, text string, opts Options) (*Result, error) {
	st, err := Parse(text)
	if err != nil {
		return nil, err
	}
	res, err := RunStatement(ctx, g, st, opts)
	return withToken(res, err, g, text, opts)
}

// withToken replaces the continuation marker of a page of text by a real
// token.
func withToken(res *Result, err error, g Graph, text string, opts Options) (*Result, error) {
	if err != nil {
		return nil, err
	}
	if res.ContinuationToken != "" {
		res.ContinuationToken = Token{Query: text, Position: g.Position(), Offset: opts.Offset + len(res.Rows), Params: opts.Params}.Encode()
	}
	return res, nil
}

// Explain returns the plan of st over g, one line per step.
func Explain(g Graph, st *Statement, params map[string]any) ([]string, error) {
	pl, err := plan(g, st, params, true)
	if err != nil {
		return nil, err
	}
	return slices.Clone(pl.explain), nil
}

// RunStatement returns one page of st's rows over g. The result's
// ContinuationToken is only a marker ("more") that Run replaces with a real
// token; callers holding the text should use Run.
func RunStatement(ctx context.Context, g Graph, st *Statement, opts Options) (*Result, error) {
	pl, err := plan(g, st, opts.Params, st.Explain)
	if err != nil {
		return nil, err
	}
	return runPlan(ctx, g, pl, nil, opts)
}

// runPlan returns one page of pl's rows over g, with args the values of
// its string literals when pl was made for reuse.
func runPlan(ctx context.Context, g Graph, pl *Plan, args []any, opts Options) (*Result, error) {
	st := pl.stmt
	size := opts.PageSize
	if size <= 0 {
		size = DefaultPageSize
	}
	size = min(size, MaxPageSize)
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// The budget is checked as work proceeds (exec.tick) rather than by a
	// context timer: most queries finish long before the first check.
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	maxMem := opts.MaxMemory
	if maxMem <= 0 {
		maxMem = DefaultMaxMemory
	}
	x := execPool.Get().(*exec)
	x.ctx, x.deadline, x.g, x.pl, x.args, x.maxMem, x.visible = ctx, deadline, g, pl, args, maxMem, opts.Visible
	defer x.free()
	res := &Result{Position: g.Position()}
	if st.Explain {
		b, _ := json.Marshal(map[string]any{"plan": pl.explain})
		res.Rows = []json.RawMessage{b}
		res.Charge = 1
		return res, nil
	}
	var rows [][]byte
	more := false
	switch {
	case pl.mode == outCount:
		n := 0
		if err := x.run(func(*row) bool { n++; return true }); err != nil {
			return nil, err
		}
		b := appendString([]byte{'{'}, pl.cols[0].name)
		b = append(b, ':')
		b = appendNumber(b, float64(n))
		rows = [][]byte{append(b, '}')}
	case pl.mode == outAggregate:
		all, err := x.aggregate()
		if err != nil {
			return nil, err
		}
		rows, more = pageOf(all, st.Top, opts.Offset, size)
	case len(st.OrderBy) > 0:
		all, err := x.sorted()
		if err != nil {
			return nil, err
		}
		rows, more = pageOf(all, st.Top, opts.Offset, size)
	default:
		var err error
		rows, more, err = x.stream(st.Distinct, st.Top, opts.Offset, size)
		if err != nil {
			return nil, err
		}
	}
	if pl.mode == outCount && opts.Offset > 0 {
		rows = nil
	}
	// json.RawMessage is a []byte: the page's rows as they are.
	res.Rows = unsafe.Slice((*json.RawMessage)(unsafe.SliceData(rows)), len(rows))
	if more {
		res.ContinuationToken = "more"
	}
	res.chunks, res.page = x.stream1.chunks, x.stream1.page
	res.Charge = math.Round((1+float64(x.work)/1000+float64(len(rows))/100)*100) / 100
	return res, nil
}

// stream emits rows in plan order without holding them, skipping offset
// and stopping one row past the page.
func (x *exec) stream(distinct bool, top, offset, size int) ([][]byte, bool, error) {
	s := &x.stream1
	*s = streamState{distinct: distinct, top: top, offset: offset, size: size, chunk: minChunk, buf: s.buf[:0]}
	if distinct {
		s.seen = map[string]bool{}
	}
	err := x.run(x.streamRow)
	return s.out, s.more, err
}

// streamState is the state of exec.stream.
type streamState struct {
	distinct          bool
	top, offset, size int
	out               [][]byte
	more              bool
	n                 int // rows produced so far
	seen              map[string]bool
	buf, arena        []byte
	chunk             int      // the size of the next chunk
	chunks            [][]byte // the arena chunks, for Result.Release
	page              *page    // room for out and chunks, handed to the Result
	last              int      // the length of the last row
}

func (x *exec) streamRow(r *row) bool {
	s := &x.stream1
	if s.top >= 0 && s.n >= s.top {
		return false
	}
	if s.distinct {
		s.buf = x.encode(s.buf[:0], r)
		if s.seen[string(s.buf)] {
			return true
		}
		if !x.charge(len(s.buf) + 48) {
			return false
		}
		s.seen[string(s.buf)] = true
	}
	s.n++
	if s.n <= s.offset {
		return true
	}
	if len(s.out) == s.size {
		s.more = true
		return false
	}
	if s.distinct {
		s.out = append(s.out, slices.Clone(s.buf))
		return true
	}
	// Rows share arena chunks, from 2 KiB doubling to 64 KiB, recycled
	// when the Result is released. A new chunk starts when what is left
	// of the last may not hold a row as long as the last one; a row that
	// does not fit after all gets its own buffer (sized by the encoder
	// when it can). No encoded byte is copied or written again.
	if s.page == nil {
		s.page = getPage()
		s.out, s.chunks = s.page.rows[:0], s.page.chunks[:0]
	}
	if cap(s.arena)-len(s.arena) < max(256, s.last) {
		if s.arena != nil {
			s.chunk = min(2*s.chunk, maxChunk)
		}
		s.arena = getChunk(s.chunk)
		s.chunks = append(s.chunks, s.arena)
	}
	tail := s.arena[len(s.arena):]
	b := x.encode(tail, r)
	if cap(tail) > 0 && unsafe.SliceData(b) == unsafe.SliceData(tail) {
		s.arena = s.arena[:len(s.arena)+len(b)]
	}
	s.out = append(s.out, b[:len(b):len(b)])
	s.last = len(b)
	return true
}

type sortedRow struct {
	keys []any
	json []byte
}

func (x *exec) sortRows(rows []sortedRow) {
	desc := x.pl.desc
	slices.SortStableFunc(rows, func(a, b sortedRow) int {
		for i := range a.keys {
			c := sortCompare(a.keys[i], b.keys[i])
			if desc[i] {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
}

// sorted materializes every row with its ORDER BY keys and sorts them.
func (x *exec) sorted() ([][]byte, error) {
	var rows []sortedRow
	var seen map[string]bool
	if x.pl.stmt.Distinct {
		seen = map[string]bool{}
	}
	err := x.run(func(r *row) bool {
		b := x.encode(nil, r)
		if seen != nil {
			if seen[string(b)] {
				return true
			}
			seen[string(b)] = true
		}
		keys := make([]any, len(x.pl.order))
		for i, f := range x.pl.order {
			keys[i] = f(r)
		}
		rows = append(rows, sortedRow{keys: keys, json: b})
		return x.charge(len(b) + 64 + 24*len(keys))
	})
	if err != nil {
		return nil, err
	}
	x.sortRows(rows)
	out := make([][]byte, len(rows))
	for i := range rows {
		out[i] = rows[i].json
	}
	return out, nil
}

// aggregate groups rows, computes the aggregates and returns the output
// rows, ordered by ORDER BY or else by first appearance of each group.
func (x *exec) aggregate() ([][]byte, error) {
	pl := x.pl
	index := map[string]int{}
	var groups []*aggRow
	var key []byte
	err := x.run(func(r *row) bool {
		key = key[:0]
		var keys []any
		if len(pl.groupBy) > 0 {
			keys = make([]any, len(pl.groupBy))
			for i, f := range pl.groupBy {
				keys[i] = f(r)
				if isMissing(keys[i]) {
					key = append(key, 'u')
				} else {
					key = appendValue(key, keys[i])
				}
				key = append(key, 0)
			}
		}
		gi, ok := index[string(key)]
		if !ok {
			gi = len(groups)
			index[string(key)] = gi
			groups = append(groups, &aggRow{keys: keys, accs: make([]acc, len(pl.aggs))})
			if !x.charge(len(key) + 64 + 48*len(pl.aggs)) {
				return false
			}
		}
		g := groups[gi]
		for i, a := range pl.aggs {
			var v any = true
			if a.arg != nil {
				v = a.arg(r)
			}
			g.accs[i].add(a.fn, v)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if len(groups) == 0 && len(pl.groupBy) == 0 {
		groups = append(groups, &aggRow{accs: make([]acc, len(pl.aggs))})
	}
	rows := make([]sortedRow, 0, len(groups))
	var seen map[string]bool
	if pl.stmt.Distinct {
		seen = map[string]bool{}
	}
	for _, g := range groups {
		r := &row{agg: g}
		b := x.encode(nil, r)
		if seen != nil {
			if seen[string(b)] {
				continue
			}
			seen[string(b)] = true
		}
		keys := make([]any, len(pl.order))
		for i, f := range pl.order {
			keys[i] = f(r)
		}
		rows = append(rows, sortedRow{keys: keys, json: b})
	}
	if len(pl.order) > 0 {
		x.sortRows(rows)
	}
	out := make([][]byte, len(rows))
	for i := range rows {
		out[i] = rows[i].json
	}
	return out, nil
}

// pageOf applies TOP, then the page window.
func pageOf(all [][]byte, top, offset, size int) ([][]byte, bool) {
	if top >= 0 && len(all) > top {
		all = all[:top]
	}
	if offset >= len(all) {
		return nil, false
	}
	end := min(offset+size, len(all))
	return all[offset:end], end < len(all)
}
