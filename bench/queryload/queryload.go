package queryload

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/twinlog/twinlog/bench"
	"github.com/twinlog/twinlog/bench/graphload"
	"github.com/twinlog/twinlog/bench/httpload"
	"github.com/twinlog/twinlog/bench/stdgraph"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/node"
	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/query"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// Config sizes a run. Zero values mean the documented defaults.
type Config struct {
	// Graph is the graph to query. Default: the full standard graph.
	Graph stdgraph.Config
	// Phase is how long each query kind is timed, one query at a time, in
	// process and on PostgreSQL. Default 2 s.
	Phase time.Duration
	// Queries is the size of the mixed workload. Default 10,000.
	Queries int
	// Conns is the number of concurrent connections of the mixed
	// workload. Default 64.
	Conns int
	// Mix weighs the query kinds of the mixed workload by name. Default
	// DefaultMix.
	Mix map[string]int
	// Postgres is a connection string for the baseline; empty skips it.
	Postgres string
	// Progress receives progress lines. Default io.Discard.
	Progress io.Writer
}

// DefaultMix is a read mix dominated by point reads: 80% $dtId lookups,
// 15% one-hop JOINs, 4% three-hop MATCHes and 1% room scans.
var DefaultMix = map[string]int{"lookup": 80, "join": 15, "match": 4, "rooms-above-75": 1}

// PointMix is DefaultMix without the scans.
var PointMix = map[string]int{"lookup": 80, "join": 16, "match": 4}

func (c *Config) defaults() {
	if c.Phase == 0 {
		c.Phase = 2 * time.Second
	}
	if c.Queries == 0 {
		c.Queries = 10000
	}
	if c.Conns == 0 {
		c.Conns = 64
	}
	if c.Mix == nil {
		c.Mix = DefaultMix
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Latency is one query kind timed one query at a time.
type Latency struct {
	Runs                int
	AvgUs, P50Us, P99Us float64
}

// Mixed is one run of the mixed workload.
type Mixed struct {
	Queries int
	Seconds float64
	PerSec  float64
	P50Us   float64
	P99Us   float64
	// CPUUs is the process's CPU time per query (server, load generator
	// and garbage collector together): steadier than the rate on a shared
	// machine.
	CPUUs      float64
	Errors     int64
	FirstError string
}

// Result is what a run measured.
type Result struct {
	Twins, Relationships int
	// BuildSeconds is the in-memory build of the graph from its events.
	BuildSeconds float64
	// InProcess are the query kinds through graphquery, by name.
	InProcess map[string]Latency
	// NoiseP50Us and NoiseP99Us time a fixed computation of about
	// NoiseUs just before them (bench.Noise): the host's own tail.
	NoiseUs, NoiseP50Us, NoiseP99Us float64
	// NodeLoadSeconds is the node's load: the events appended to its log
	// and applied.
	NodeLoadSeconds float64
	// HTTP is the mixed workload over POST /query; HTTPPoint the same
	// without scans.
	HTTP, HTTPPoint Mixed
	PGLoadSeconds   float64
	PG              map[string]Latency
	// PGMixed and PGPoint are the mixed workloads on PostgreSQL, through
	// the same number of connections.
	PGMixed, PGPoint Mixed
	PGError          string
}

// Run executes the workload: the query kinds in process, the mixed
// workload over HTTP against a node, then the PostgreSQL baseline.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	res := &Result{Twins: cfg.Graph.Twins(), Relationships: cfg.Graph.Relationships(), InProcess: map[string]Latency{}, PG: map[string]Latency{}}
	qs := Queries(cfg.Graph)

	fmt.Fprintf(cfg.Progress, "building %d twins and %d relationships from events\n", res.Twins, res.Relationships)
	start := time.Now()
	g, err := graphload.Build(cfg.Graph)
	if err != nil {
		return nil, err
	}
	res.BuildSeconds = time.Since(start).Seconds()
	runtime.GC() // the build's garbage, before the timed phases
	r := graphquery.New(g, graphquery.Options{})
	const noiseWork = 30 * time.Microsecond
	res.NoiseUs = float64(noiseWork.Microseconds())
	res.NoiseP50Us, res.NoiseP99Us = bench.Noise(cfg.Phase, noiseWork)
	fmt.Fprintf(cfg.Progress, "host noise: a fixed %.0f µs computation, p50 %.1f µs, p99 %.1f µs\n", res.NoiseUs, res.NoiseP50Us, res.NoiseP99Us)
	for _, q := range qs {
		l, err := timeKind(ctx, cfg.Phase, func(i int) error {
			out, err := r.Run(ctx, graphquery.Request{Query: q.Text(i), PageSize: query.MaxPageSize})
			if err == nil && len(out.Rows) != q.Rows {
				err = fmt.Errorf("%d rows, want %d", len(out.Rows), q.Rows)
			}
			if err == nil {
				out.Release() // as POST /query does once the answer is written
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q.Name, err)
		}
		res.InProcess[q.Name] = l
		fmt.Fprintf(cfg.Progress, "in process %s: %d runs, avg %.1f µs, p50 %.1f µs, p99 %.1f µs\n", q.Name, l.Runs, l.AvgUs, l.P50Us, l.P99Us)
	}
	g, r = nil, nil
	runtime.GC()

	if err := runHTTP(ctx, cfg, qs, res); err != nil {
		return nil, err
	}
	runtime.GC()

	if cfg.Postgres != "" {
		if err := runPostgres(ctx, cfg, qs, res); err != nil {
			res.PGError = err.Error()
			fmt.Fprintf(cfg.Progress, "postgres baseline skipped: %v\n", err)
		}
	}
	return res, nil
}

// timeKind runs op one at a time for d (at least 20 runs).
func timeKind(ctx context.Context, d time.Duration, op func(i int) error) (Latency, error) {
	var lat []float64
	start := time.Now()
	for i := 0; (i < 20 || time.Since(start) < d) && ctx.Err() == nil; i++ {
		t0 := time.Now()
		if err := op(i); err != nil {
			return Latency{}, err
		}
		lat = append(lat, float64(time.Since(t0).Nanoseconds())/1e3)
	}
	if len(lat) == 0 {
		return Latency{}, ctx.Err()
	}
	sum := 0.0
	for _, v := range lat {
		sum += v
	}
	sort.Float64s(lat)
	return Latency{Runs: len(lat), AvgUs: sum / float64(len(lat)), P50Us: lat[len(lat)/2], P99Us: lat[min(len(lat)-1, len(lat)*99/100)]}, nil
}

// schedule lists the query kind of each of n queries: the mix's weights
// spread evenly, the same sequence every run.
func schedule(qs []Query, mix map[string]int, n int) ([]*Query, error) {
	var wheel []*Query
	for i := range qs {
		for range mix[qs[i].Name] {
			wheel = append(wheel, &qs[i])
		}
	}
	if len(wheel) == 0 {
		return nil, fmt.Errorf("queryload: the mix names no known query kind")
	}
	out := make([]*Query, n)
	for i := range out {
		out[i] = wheel[spread(i)%len(wheel)]
	}
	return out, nil
}

// mixed runs n queries of the mix from conns goroutines; op runs query q
// with run index i.
func mixed(ctx context.Context, qs []Query, mix map[string]int, n, conns int, op func(q *Query, i int) error) (Mixed, error) {
	sched, err := schedule(qs, mix, n)
	if err != nil {
		return Mixed{}, err
	}
	var next, errs atomic.Int64
	var firstErr atomic.Value
	lat := make([]float64, n)
	var wg sync.WaitGroup
	start, cpu0 := time.Now(), bench.CPUTime()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := op(sched[i], i); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				lat[i] = float64(time.Since(t0).Nanoseconds()) / 1e3
			}
		}()
	}
	wg.Wait()
	el, cpu := time.Since(start).Seconds(), bench.CPUTime()-cpu0
	sort.Float64s(lat)
	m := Mixed{Queries: n, Seconds: el, PerSec: float64(n) / el, P50Us: lat[n/2], P99Us: lat[min(n-1, n*99/100)],
		CPUUs: float64(cpu.Nanoseconds()) / 1e3 / float64(n), Errors: errs.Load()}
	if e, ok := firstErr.Load().(string); ok {
		m.FirstError = e
	}
	return m, ctx.Err()
}

func runHTTP(ctx context.Context, cfg Config, qs []Query, res *Result) error {
	dir, err := os.MkdirTemp("", "queryload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	const token = "queryload"
	// No background snapshots during the run: they would compete with the
	// queries for the two cores.
	n, err := node.Open(ctx, node.Config{DataDir: dir, Listen: "127.0.0.1:0", Token: token,
		Logger:    slog.New(slog.NewTextHandler(cfg.Progress, nil)),
		Snapshots: twingraph.SnapshotterOptions{Every: 1 << 62, Interval: 24 * time.Hour}})
	if err != nil {
		return err
	}
	defer n.Close()
	fmt.Fprintf(cfg.Progress, "node: appending the graph's events to its log\n")
	start := time.Now()
	eng := n.Engine()
	var last uint64
	err = graphload.Generate(graphload.Options{Graph: cfg.Graph}, func(batch []event.Event) error {
		for i := range batch {
			batch[i].Position, batch[i].Time = 0, 0 // the log assigns them
		}
		r, err := eng.Append(ctx, batch)
		last = r.Last
		return err
	})
	if err != nil {
		return fmt.Errorf("node load: %w", err)
	}
	if err := eng.WaitApplied(ctx, last); err != nil {
		return fmt.Errorf("node load: %w", err)
	}
	res.NodeLoadSeconds = time.Since(start).Seconds()
	fmt.Fprintf(cfg.Progress, "node: loaded in %.1fs\n", res.NodeLoadSeconds)
	// The history checkpoint the load made due (or is writing) is done
	// before the timed phase, which appends nothing.
	if _, err := n.Checkpointer().Maybe(); err != nil {
		return fmt.Errorf("node load: checkpoint: %w", err)
	}

	srvCtx, stopSrv := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- n.Serve(srvCtx) }()
	defer func() {
		stopSrv()
		<-served
	}()
	client, err := httpload.New(n.URL(), cfg.Conns)
	if err != nil {
		return err
	}
	defer client.Close()
	headers := []httpload.Header{
		{Name: "Authorization", Value: "Bearer " + token},
		{Name: "Content-Type", Value: "application/json"},
		{Name: "max-items-per-page", Value: strconv.Itoa(query.MaxPageSize)},
	}
	// The generator shares the machine with the server: it reuses its
	// buffers and counts the rows of an answer without decoding them.
	type bufPair struct{ req, resp []byte }
	var bufs sync.Pool
	op := func(q *Query, i int) error {
		buf, _ := bufs.Get().(*bufPair)
		if buf == nil {
			buf = new(bufPair)
		}
		defer bufs.Put(buf)
		text, _ := json.Marshal(q.Text(i))
		buf.req = append(append(append(buf.req[:0], `{"query":`...), text...), '}')
		status, resp, err := client.Do("POST", "/query", headers, buf.req, buf.resp[:0])
		buf.resp = resp
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("%s: %d %s", q.Name, status, strings.TrimSpace(string(resp)))
		}
		n, err := countRows(resp)
		if err != nil {
			return fmt.Errorf("%s: %w", q.Name, err)
		}
		if n != q.Rows {
			return fmt.Errorf("%s: %d rows, want %d", q.Name, n, q.Rows)
		}
		return nil
	}
	// Warm the caches with one query of each kind of the mix (the first
	// room scan of a node fills its number columns, ~0.8 s on the full
	// graph), then the connections with a tenth of the workload.
	for i := range qs {
		if cfg.Mix[qs[i].Name] > 0 {
			if err := op(&qs[i], 0); err != nil {
				return err
			}
		}
	}
	if _, err := mixed(ctx, qs, PointMix, cfg.Queries/10, cfg.Conns, op); err != nil {
		return err
	}
	for _, m := range []struct {
		name string
		mix  map[string]int
		dst  *Mixed
	}{{"mixed", cfg.Mix, &res.HTTP}, {"point mix", PointMix, &res.HTTPPoint}} {
		// Each run starts right after a collection (see twinload's
		// phase): a run of 10,000 queries lasts about as long as the
		// time between two collections of the full graph's heap.
		runtime.GC()
		r, err := mixed(ctx, qs, m.mix, cfg.Queries, cfg.Conns, op)
		if err != nil {
			return err
		}
		*m.dst = r
		fmt.Fprintf(cfg.Progress, "http %s: %d queries in %.2fs, %.0f queries/s, p50 %.0f µs, p99 %.0f µs, %.0f µs CPU per query, %d errors %s\n",
			m.name, r.Queries, r.Seconds, r.PerSec, r.P50Us, r.P99Us, r.CPUUs, r.Errors, r.FirstError)
	}
	return nil
}

// countRows returns the number of elements of the "value" array of a
// POST /query answer. It follows the JSON's strings and nesting without
// decoding values, which would cost the generator more CPU than the server
// spends on many queries; an answer that does not start with the value
// array is decoded.
func countRows(b []byte) (int, error) {
	const head = `{"value":[`
	if !bytes.HasPrefix(b, []byte(head)) {
		var out struct {
			Value []json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return 0, err
		}
		return len(out.Value), nil
	}
	n, depth := 0, 0
	inElem, inStr := false, false
	for i := len(head); i < len(b); i++ {
		if inStr {
			// Jump to the closing quote: the next one not escaped by an
			// odd run of backslashes.
			j := bytes.IndexByte(b[i:], '"')
			if j < 0 {
				break
			}
			i += j
			k := i
			for k > 0 && b[k-1] == '\\' {
				k--
			}
			if (i-k)%2 == 0 {
				inStr = false
			}
			continue
		}
		c := b[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case ',':
			if depth == 0 {
				inElem = false
			}
			continue
		case ']', '}':
			if depth == 0 {
				return n, nil
			}
			depth--
			continue
		}
		if depth == 0 && !inElem {
			inElem = true
			n++
		}
		switch c {
		case '"':
			inStr = true
		case '[', '{':
			depth++
		}
	}
	return 0, fmt.Errorf("the answer ends inside its value array")
}

func runPostgres(ctx context.Context, cfg Config, qs []Query, res *Result) error {
	pcfg, err := pgxpool.ParseConfig(cfg.Postgres)
	if err != nil {
		return err
	}
	pcfg.MaxConns = int32(cfg.Conns)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(pctx, pcfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pool.Ping(pctx); err != nil {
		return fmt.Errorf("PostgreSQL at %s unreachable: %w", pcfg.ConnConfig.Host, err)
	}
	for _, q := range []string{
		`DROP TABLE IF EXISTS queryload_rels, queryload_twins`,
		`CREATE TABLE queryload_twins (id text PRIMARY KEY, model text NOT NULL, doc jsonb NOT NULL)`,
		`CREATE TABLE queryload_rels (src text NOT NULL, id text NOT NULL, name text NOT NULL, tgt text NOT NULL, props jsonb, PRIMARY KEY (src, id))`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return err
		}
	}
	defer pool.Exec(context.Background(), `DROP TABLE IF EXISTS queryload_rels, queryload_twins`)
	fmt.Fprintf(cfg.Progress, "postgres: loading\n")
	start := time.Now()
	var twinRows, relRows [][]any
	stdgraph.Generate(cfg.Graph, func(t stdgraph.Twin) error {
		doc := make(map[string]any, len(t.Properties)+2)
		for k, v := range t.Properties {
			doc[k] = v
		}
		doc["$dtId"] = t.ID
		doc["$metadata"] = map[string]any{"$model": t.Model}
		b, _ := json.Marshal(doc)
		twinRows = append(twinRows, []any{t.ID, t.Model, string(b)})
		return nil
	}, func(r stdgraph.Relationship) error {
		relRows = append(relRows, []any{r.Source, r.ID, r.Name, r.Target, "{}"})
		return nil
	})
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"queryload_twins"}, []string{"id", "model", "doc"}, pgx.CopyFromRows(twinRows)); err != nil {
		return err
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"queryload_rels"}, []string{"src", "id", "name", "tgt", "props"}, pgx.CopyFromRows(relRows)); err != nil {
		return err
	}
	twinRows, relRows = nil, nil
	for _, q := range []string{
		`CREATE INDEX ON queryload_twins (model)`,
		`CREATE INDEX ON queryload_rels (tgt)`,
		`ANALYZE queryload_twins`, `ANALYZE queryload_rels`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return err
		}
	}
	res.PGLoadSeconds = time.Since(start).Seconds()
	fmt.Fprintf(cfg.Progress, "postgres: loaded in %.1fs\n", res.PGLoadSeconds)
	op := func(q *Query, i int) error {
		rows, err := pool.Query(ctx, q.SQL, q.Args(i)...)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			// Read every row as the client would: the raw bytes.
			_ = rows.RawValues()
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n != q.Rows {
			return fmt.Errorf("%s: %d rows, want %d", q.Name, n, q.Rows)
		}
		return nil
	}
	for i := range qs {
		q := &qs[i]
		l, err := timeKind(ctx, cfg.Phase, func(i int) error { return op(q, i) })
		if err != nil {
			return fmt.Errorf("%s: %w", q.Name, err)
		}
		res.PG[q.Name] = l
		fmt.Fprintf(cfg.Progress, "postgres %s: %d runs, avg %.1f µs, p50 %.1f µs, p99 %.1f µs\n", q.Name, l.Runs, l.AvgUs, l.P50Us, l.P99Us)
	}
	for _, m := range []struct {
		name string
		mix  map[string]int
		dst  *Mixed
	}{{"mixed", cfg.Mix, &res.PGMixed}, {"point mix", PointMix, &res.PGPoint}} {
		// Each run starts right after a collection (see twinload's
		// phase): a run of 10,000 queries lasts about as long as the
		// time between two collections of the full graph's heap.
		runtime.GC()
		r, err := mixed(ctx, qs, m.mix, cfg.Queries, cfg.Conns, op)
		if err != nil {
			return err
		}
		*m.dst = r
		fmt.Fprintf(cfg.Progress, "postgres %s: %d queries in %.2fs, %.0f queries/s, p50 %.0f µs, p99 %.0f µs, %d errors %s\n",
			m.name, r.Queries, r.Seconds, r.PerSec, r.P50Us, r.P99Us, r.Errors, r.FirstError)
	}
	return nil
}
