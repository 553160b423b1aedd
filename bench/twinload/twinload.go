// Package twinload is the whole-system workload for the twin graph and its
// REST API: it loads the standard benchmark graph into a node, drives twin
// GETs and PATCHes over loopback HTTP from many connections, measures memory
// and restart time, and runs the same reads and writes against PostgreSQL
// (twins as JSONB rows) in the same run for a side-by-side ratio.
package twinload

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/twinlog/twinlog/bench"
	"github.com/twinlog/twinlog/bench/httpload"
	"github.com/twinlog/twinlog/bench/stdgraph"
	"github.com/twinlog/twinlog/engine/node"
	"github.com/twinlog/twinlog/engine/twins"
)

// Config sizes a run. Zero values mean the documented defaults.
type Config struct {
	// Graph is the graph to load. Default: the full standard graph.
	Graph stdgraph.Config
	// Conns is the number of concurrent HTTP connections (and PostgreSQL
	// connections). Default 64.
	Conns int
	// Duration is the length of each measured phase. Default 10 s.
	Duration time.Duration
	// LoadWorkers load the graph concurrently. Default 64.
	LoadWorkers int
	// DataDir holds the node's data. Default: a temporary directory,
	// removed afterwards.
	DataDir string
	// Postgres is a connection string for the baseline; empty skips it.
	Postgres string
	// Progress receives progress lines. Default io.Discard.
	Progress io.Writer
	// HeapProfile, when set, is a file to write a heap profile to after
	// the load (inspect with pprof -sample_index=inuse_space). Default:
	// none.
	HeapProfile string
	// CPUProfile, when set, is a path prefix: each HTTP phase writes a CPU
	// profile of itself to <prefix><phase>.prof (the phase's name with
	// spaces and slashes as dashes). Default: none.
	CPUProfile string
}

// Phase is one measured load phase.
type Phase struct {
	Ops       int64
	OpsPerSec float64
	P50us     float64
	P99us     float64
	Errors    int64
	// CPUus is the process's CPU time (server and generator) per
	// operation: steadier than the rate on a shared machine.
	CPUus float64
	// GCCycles is how many collections ran during the phase, and GCus
	// their CPU time per operation (part of CPUus).
	GCCycles uint64
	GCus     float64
	// AllocBytes is the heap allocation per operation (server and
	// generator).
	AllocBytes float64
}

// Result is what a run measured.
type Result struct {
	Twins, Relationships int
	LoadSeconds          float64
	HeapBytes, RSSBytes  uint64
	// PeakRSSBytes is the process's peak RSS over the load (before the
	// collection that RSSBytes follows): the graph, the garbage not yet
	// collected, the loaders' buffers.
	PeakRSSBytes uint64
	// SnapshotSeconds and SnapshotBytes are the snapshot taken after the
	// load; RestartSeconds is the restart from it plus the log tail of
	// RestartTail events (the HTTP phases' writes).
	SnapshotSeconds float64
	SnapshotBytes   int64
	// CompactSeconds is the rebuild of the loaded graph (node.CompactGraph);
	// GCBefore and GCAfter a forced collection before and after it;
	// CompactHeapBytes and CompactRSSBytes the heap in use and RSS after.
	CompactSeconds                    float64
	GCBefore, GCAfter                 Collection
	CompactHeapBytes, CompactRSSBytes uint64
	RestartSeconds                    float64
	RestartTail                       uint64
	HTTP                              map[string]Phase
	PGLoadSeconds                     float64
	PG                                map[string]Phase
	PGError                           string
}

func (c *Config) defaults() {
	if c.Conns == 0 {
		c.Conns = 64
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.LoadWorkers == 0 {
		c.LoadWorkers = 64
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Collection is one forced garbage collection: its CPU time and the heap
// objects it found live.
type Collection struct {
	CPUSeconds float64
	Objects    uint64
}

// collect forces a collection and measures it.
func collect() Collection {
	g0 := bench.GC()
	runtime.GC()
	g1 := bench.GC()
	s := []metrics.Sample{{Name: "/gc/heap/objects:objects"}}
	metrics.Read(s)
	c := Collection{CPUSeconds: (g1.CPU - g0.CPU).Seconds()}
	if s[0].Value.Kind() == metrics.KindUint64 {
		c.Objects = s[0].Value.Uint64()
	}
	return c
}

// NetHTTPSuffix ends the names of the phases served by net/http's server.
const NetHTTPSuffix = " (net/http)"

// netHTTPPhases serves n's API with net/http's server, configured as a node
// configures its own, on a second port, and runs phases against it.
func netHTTPPhases(n *node.Node, conns int, phases func(*httpload.Client)) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	api := n.API()
	srv := &http.Server{Handler: api, ConnContext: api.ConnContext, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go srv.Serve(ln)
	defer srv.Close()
	cl, err := httpload.New("http://"+ln.Addr().String(), conns)
	if err != nil {
		return err
	}
	defer cl.Close()
	phases(cl)
	return nil
}

// authzPhases measures what authorization adds: the same GETs and
// queries as the admin token (a superuser, no grant looked at) with API
// keys whose grants are a model scope (every room) and a subtree scope (the
// rooms of one building), each beside the admin doing the same.
func authzPhases(cfg Config, res *Result, call func(tok, method, path, body string, out any) error) error {
	newKey := func(name, grant string) (string, error) {
		var k struct{ Key, Principal string }
		if err := call("twinload", "POST", "/apikeys", `{"name":"`+name+`"}`, &k); err != nil {
			return "", err
		}
		return k.Key, call("twinload", "POST", "/grants", `{"principal":"`+k.Principal+`","role":"reader","scope":`+grant+`}`, nil)
	}
	modelKey, err := newKey("rooms", `{"kind":"model","model":"`+stdgraph.RoomModel+`"}`)
	if err != nil {
		return err
	}
	subtreeKey, err := newKey("building-0", `{"kind":"subtree","root":"building-0","relationships":["contains"]}`)
	if err != nil {
		return err
	}
	get := func(tok string, room func(*rand.Rand) string) func(*rand.Rand) error {
		return func(rng *rand.Rand) error { return call(tok, "GET", "/digitaltwins/"+room(rng), "", nil) }
	}
	query := func(tok string) func(*rand.Rand) error {
		return func(rng *rand.Rand) error {
			var page struct{ Value []json.RawMessage }
			if err := call(tok, "POST", "/query", `{"query":"SELECT * FROM DIGITALTWINS T WHERE T.$dtId = '`+roomID(cfg.Graph, rng)+`'"}`, &page); err != nil {
				return err
			}
			if len(page.Value) != 1 {
				return fmt.Errorf("query: %d rows, want 1", len(page.Value))
			}
			return nil
		}
	}
	anyRoom := func(rng *rand.Rand) string { return roomID(cfg.Graph, rng) }
	b0 := cfg.Graph
	b0.Buildings = 1
	building0 := func(rng *rand.Rand) string { return roomID(b0, rng) }
	// Each pair starts right after a collection, then runs both sides on
	// the same connections for twice the phase length, switching every
	// 100 ms in the order without, with, with, without, ...: at full size
	// a collection marks the 1.7 GiB heap for a second or more every few
	// seconds, and with sides this short its work falls on both alike
	// instead of on whichever half happened to hold it.
	for _, p := range []struct {
		without, with     string
		withoutOp, withOp func(*rand.Rand) error
	}{
		{"GET admin", "GET key, model grant", get("twinload", anyRoom), get(modelKey, anyRoom)},
		{"GET admin, building 0", "GET key, subtree grant", get("twinload", building0), get(subtreeKey, building0)},
		{"query admin", "query key, model grant", query("twinload"), query(modelKey)},
	} {
		runtime.GC()
		a, b := runPair(context.Background(), cfg, 100*time.Millisecond, p.withoutOp, p.withOp)
		res.HTTP[p.without], res.HTTP[p.with] = a, b
		for _, x := range []struct {
			name string
			ph   Phase
		}{{p.without, a}, {p.with, b}} {
			fmt.Fprintf(cfg.Progress, "http %s (interleaved): %.0f ops/s, p50 %.0f µs, p99 %.0f µs, %.1f µs CPU/op, %d errors\n",
				x.name, x.ph.OpsPerSec, x.ph.P50us, x.ph.P99us, x.ph.CPUus, x.ph.Errors)
		}
	}
	return nil
}

// runPair measures two operations against each other over 2×cfg.Duration:
// every connection runs whichever side is current, and the side switches
// every seg in the order a, b, b, a, ... An operation counts for the side
// current when it started; each side's rate is its operations over the
// time it was current, its CPU per operation the process's CPU over that
// time divided by its operations.
func runPair(ctx context.Context, cfg Config, seg time.Duration, a, b func(*rand.Rand) error) (Phase, Phase) {
	ops := [2]func(*rand.Rand) error{a, b}
	var side atomic.Int32
	var done atomic.Bool
	var n, errs [2]atomic.Int64
	lat := make([][2][]float64, cfg.Conns)
	var wg sync.WaitGroup
	for w := range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 43))
			for !done.Load() && ctx.Err() == nil {
				s := side.Load()
				t0 := time.Now()
				if err := ops[s](rng); err != nil {
					errs[s].Add(1)
					continue
				}
				lat[w][s] = append(lat[w][s], float64(time.Since(t0).Microseconds()))
				n[s].Add(1)
			}
		}()
	}
	var spent, cpu [2]time.Duration
	segs := int(2 * cfg.Duration / seg)
	t, c := time.Now(), bench.CPUTime()
	for i := range segs {
		time.Sleep(seg)
		t1, c1 := time.Now(), bench.CPUTime()
		s := side.Load()
		spent[s] += t1.Sub(t)
		cpu[s] += c1 - c
		t, c = t1, c1
		// a, b, b, a, a, b, b, a, ...: segment i+1 is b when (i+1)%4 is 1 or 2.
		if j := (i + 1) % 4; j == 1 || j == 2 {
			side.Store(1)
		} else {
			side.Store(0)
		}
	}
	done.Store(true)
	wg.Wait()
	var out [2]Phase
	for s := range 2 {
		var all []float64
		for _, l := range lat {
			all = append(all, l[s]...)
		}
		sort.Float64s(all)
		p := Phase{Ops: n[s].Load(), Errors: errs[s].Load()}
		if spent[s] > 0 {
			p.OpsPerSec = float64(p.Ops) / spent[s].Seconds()
		}
		if len(all) > 0 {
			p.P50us = all[len(all)/2]
			p.P99us = all[len(all)*99/100]
		}
		if p.Ops > 0 {
			p.CPUus = float64(cpu[s].Microseconds()) / float64(p.Ops)
		}
		out[s] = p
	}
	return out[0], out[1]
}

func roomID(g stdgraph.Config, rng *rand.Rand) string {
	b, f, r := g.Buildings, g.Floors, g.Rooms
	if b == 0 {
		b = 1000
	}
	if f == 0 {
		f = 10
	}
	if r == 0 {
		r = 20
	}
	// Built without fmt: the generator shares the cores with the server.
	var a [64]byte
	id := append(a[:0], "building-"...)
	id = strconv.AppendInt(id, int64(rng.IntN(b)), 10)
	id = append(id, "-floor-"...)
	id = strconv.AppendInt(id, int64(rng.IntN(f)), 10)
	id = append(id, "-room-"...)
	id = strconv.AppendInt(id, int64(rng.IntN(r)), 10)
	return string(id)
}

// Run executes the workload.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	res := &Result{Twins: cfg.Graph.Twins(), Relationships: cfg.Graph.Relationships(), HTTP: map[string]Phase{}, PG: map[string]Phase{}}
	dir := cfg.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "twinload-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	const token = "twinload"
	// The node's own compactor would rebuild the graph while it loads and
	// in the middle of a phase; the workload compacts once, after the load.
	ncfg := node.Config{DataDir: dir, Listen: "127.0.0.1:0", Token: token, CompactCheck: -1}
	n, err := node.Open(ctx, ncfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if n != nil {
			n.Close()
		}
	}()

	fmt.Fprintf(cfg.Progress, "loading %d twins and %d relationships\n", res.Twins, res.Relationships)
	start := time.Now()
	if err := load(ctx, n.Twins(), cfg); err != nil {
		return nil, err
	}
	res.LoadSeconds = time.Since(start).Seconds()
	res.PeakRSSBytes = peakRSS()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapBytes = ms.HeapInuse
	res.RSSBytes = rss()
	if cfg.HeapProfile != "" {
		if err := writeHeapProfile(cfg.HeapProfile); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(cfg.Progress, "loaded in %.1fs; heap %d MiB, RSS %d MiB (peak %d MiB)\n", res.LoadSeconds, res.HeapBytes>>20, res.RSSBytes>>20, res.PeakRSSBytes>>20)

	// A snapshot of the loaded graph: the restart below loads it and
	// replays only the HTTP phases' writes.
	start = time.Now()
	snapPos, err := n.Snapshotter().Take()
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	res.SnapshotSeconds = time.Since(start).Seconds()
	if fi, err := os.Stat(filepath.Join(dir, "snapshots", fmt.Sprintf("graph-%020d.snap", snapPos))); err == nil {
		res.SnapshotBytes = fi.Size()
	}
	fmt.Fprintf(cfg.Progress, "snapshot at %d written in %.2fs (%d MiB)\n", snapPos, res.SnapshotSeconds, res.SnapshotBytes>>20)
	// The history checkpointer adopts that snapshot (or finishes the
	// checkpoint it is writing) before the timed phases, as it would in
	// the second after a bulk load.
	if _, err := n.Checkpointer().Maybe(); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	// The graph as the load left it, spread among the garbage of three
	// million writes, and rebuilt (node.CompactGraph): what one garbage
	// collection costs with each.
	res.GCBefore = collect()
	start = time.Now()
	cst, err := n.CompactGraph(ctx)
	if err != nil {
		return nil, fmt.Errorf("compact: %w", err)
	}
	res.CompactSeconds = time.Since(start).Seconds()
	runtime.GC()
	debug.FreeOSMemory()
	res.GCAfter = collect()
	runtime.ReadMemStats(&ms)
	res.CompactHeapBytes, res.CompactRSSBytes = ms.HeapInuse, rss()
	fmt.Fprintf(cfg.Progress, "graph rebuilt in %.2fs (snapshot round trip %.2fs, catch-up %.2fs, applier paused %.1f ms); "+
		"a collection: %.2fs of CPU for %d objects before, %.2fs for %d after; heap %d MiB, RSS %d MiB\n",
		res.CompactSeconds, cst.Rebuild.Seconds(), cst.CatchUp.Seconds(), float64(cst.Pause.Microseconds())/1000,
		res.GCBefore.CPUSeconds, res.GCBefore.Objects, res.GCAfter.CPUSeconds, res.GCAfter.Objects,
		res.CompactHeapBytes>>20, res.CompactRSSBytes>>20)

	eng := n.Engine()
	srvCtx, stopSrv := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- n.Serve(srvCtx) }()
	url := n.URL()
	client, err := httpload.New(url, cfg.Conns)
	if err != nil {
		stopSrv()
		<-served
		return nil, err
	}
	// The generator reuses its buffers and each token's header.
	type bufPair struct{ req, resp []byte }
	var bufs sync.Pool
	var auth sync.Map // token → []httpload.Header
	callOn := func(client *httpload.Client) func(tok, method, path, body string, out any) error {
		return func(tok, method, path, body string, out any) error {
			buf, _ := bufs.Get().(*bufPair)
			if buf == nil {
				buf = new(bufPair)
			}
			defer bufs.Put(buf)
			var b []byte
			if body != "" {
				buf.req = append(buf.req[:0], body...)
				b = buf.req
			}
			h, ok := auth.Load(tok)
			if !ok {
				h, _ = auth.LoadOrStore(tok, []httpload.Header{{Name: "Authorization", Value: "Bearer " + tok}})
			}
			status, resp, err := client.Do(method, path, h.([]httpload.Header), b, buf.resp[:0])
			buf.resp = resp
			if err != nil {
				return err
			}
			if status >= 300 {
				return fmt.Errorf("%s %s: %d %s", method, path, status, resp)
			}
			if out != nil {
				return json.Unmarshal(resp, out)
			}
			return nil
		}
	}
	call := callOn(client)
	// The same three phases against one server: the HTTP stack's own
	// ceiling on this machine (a handler that does nothing, through the
	// same server, client and connections), then GET and PATCH.
	basic := func(suffix string, call func(tok, method, path, body string, out any) error, patch bool) {
		do := func(method, path, body string) error { return call(token, method, path, body, nil) }
		res.HTTP["healthz"+suffix] = phase(ctx, cfg, "http GET /healthz"+suffix, func(rng *rand.Rand) error {
			return do("GET", "/healthz", "")
		})
		res.HTTP["GET"+suffix] = phase(ctx, cfg, "http GET"+suffix, func(rng *rand.Rand) error {
			return do("GET", "/digitaltwins/"+roomID(cfg.Graph, rng), "")
		})
		if !patch {
			return
		}
		res.HTTP["PATCH"+suffix] = phase(ctx, cfg, "http PATCH"+suffix, func(rng *rand.Rand) error {
			v := strconv.FormatFloat(15+rng.Float64()*15, 'f', 2, 64)
			return do("PATCH", "/digitaltwins/"+roomID(cfg.Graph, rng), `[{"op":"replace","path":"/temperature","value":`+v+`}]`)
		})
	}
	basic("", call, true)
	// The same reads through net/http's server, for comparison: the node
	// serves with its own (engine/httpserve). Not the PATCH: its writes
	// would lengthen the log tail the restart below replays.
	if err := netHTTPPhases(n, cfg.Conns, func(cl *httpload.Client) { basic(NetHTTPSuffix, callOn(cl), false) }); err != nil {
		stopSrv()
		<-served
		return nil, err
	}
	err = authzPhases(cfg, res, call)
	stopSrv()
	<-served
	if err != nil {
		return nil, fmt.Errorf("authorization phases: %w", err)
	}
	client.Close()
	head := eng.Applied()
	n = nil

	runtime.GC()
	start = time.Now()
	n2, err := node.Open(ctx, ncfg)
	if err != nil {
		return nil, fmt.Errorf("restart: %w", err)
	}
	res.RestartSeconds = time.Since(start).Seconds()
	res.RestartTail = head - snapPos
	n2.Close()
	fmt.Fprintf(cfg.Progress, "restart (snapshot + %d events of log tail) took %.2fs\n", res.RestartTail, res.RestartSeconds)

	if cfg.Postgres != "" {
		if err := runPostgres(ctx, cfg, res); err != nil {
			res.PGError = err.Error()
			fmt.Fprintf(cfg.Progress, "postgres baseline skipped: %v\n", err)
		}
	}
	return res, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("heap profile: %w", err)
	}
	return f.Close()
}

func load(ctx context.Context, svc *twins.Service, cfg Config) error {
	if _, err := svc.AddModels(ctx, "bench", stdgraph.Models()); err != nil {
		return fmt.Errorf("add models: %w", err)
	}
	type job struct {
		twin *stdgraph.Twin
		rel  *stdgraph.Relationship
	}
	jobs := make(chan job, 4096)
	var firstErr atomic.Value
	var done atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < cfg.LoadWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				var err error
				if j.twin != nil {
					props := j.twin.Properties
					props["$metadata"] = map[string]any{"$model": j.twin.Model}
					body, _ := json.Marshal(props)
					_, _, err = svc.PutTwin(ctx, "bench", j.twin.ID, body, twins.Cond{})
				} else {
					body, _ := json.Marshal(map[string]any{"$targetId": j.rel.Target, "$relationshipName": j.rel.Name})
					_, _, err = svc.PutRelationship(ctx, "bench", j.rel.Source, j.rel.ID, body, twins.Cond{})
				}
				if err != nil && firstErr.Load() == nil {
					firstErr.Store(err)
				}
				done.Add(1)
			}
		}()
	}
	total := int64(cfg.Graph.Twins() + cfg.Graph.Relationships())
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d := done.Load()
				fmt.Fprintf(cfg.Progress, "  loaded %d/%d objects (%.0f/s)\n", d, total, float64(d)/time.Since(start).Seconds())
			}
		}
	}()
	// Twins first, then relationships, so every end exists.
	var rels []stdgraph.Relationship
	err := stdgraph.Generate(cfg.Graph, func(t stdgraph.Twin) error {
		jobs <- job{twin: &t}
		return nil
	}, func(r stdgraph.Relationship) error {
		rels = append(rels, r)
		return nil
	})
	close(jobs)
	wg.Wait()
	if err == nil {
		jobs = make(chan job, 4096)
		for w := 0; w < cfg.LoadWorkers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range jobs {
					body, _ := json.Marshal(map[string]any{"$targetId": j.rel.Target, "$relationshipName": j.rel.Name})
					if _, _, err := svc.PutRelationship(ctx, "bench", j.rel.Source, j.rel.ID, body, twins.Cond{}); err != nil && firstErr.Load() == nil {
						firstErr.Store(err)
					}
					done.Add(1)
				}
			}()
		}
		// Spread relationships of one source across the load, as a bulk
		// importer does: writes to one twin are serialized.
		rng := rand.New(rand.NewPCG(1, 2))
		rng.Shuffle(len(rels), func(i, j int) { rels[i], rels[j] = rels[j], rels[i] })
		for i := range rels {
			jobs <- job{rel: &rels[i]}
		}
		close(jobs)
		wg.Wait()
	}
	close(stop)
	if err != nil {
		return err
	}
	if e := firstErr.Load(); e != nil {
		return fmt.Errorf("load: %w", e.(error))
	}
	return nil
}

// phase runs op from cfg.Conns goroutines for cfg.Duration.
//
// Each phase starts right after a garbage collection. At full size a
// collection marks a heap of ~1.7 GiB, seconds of CPU, and comes every few
// seconds of load: a phase that happens to contain one runs at half the
// rate of one that does not, which made phases of the same work differ by
// up to 3x. Starting each from the same state, a phase pays for the
// collections its own allocations bring.
func phase(ctx context.Context, cfg Config, name string, op func(rng *rand.Rand) error) Phase {
	runtime.GC()
	return runPhase(ctx, cfg, name, op)
}

// runPhase is phase without the collection first.
func runPhase(ctx context.Context, cfg Config, name string, op func(rng *rand.Rand) error) Phase {
	if cfg.CPUProfile != "" {
		name := strings.NewReplacer(" ", "-", "/", "-").Replace(name)
		if f, err := os.Create(cfg.CPUProfile + name + ".prof"); err == nil {
			started := pprof.StartCPUProfile(f) == nil
			defer func() {
				if started {
					pprof.StopCPUProfile()
				}
				f.Close()
			}()
		}
	}
	var ops, errs atomic.Int64
	lat := make([][]float64, cfg.Conns)
	deadline := time.Now().Add(cfg.Duration)
	var wg sync.WaitGroup
	cpu0, gc0 := bench.CPUTime(), bench.GC()
	start := time.Now()
	for w := 0; w < cfg.Conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				if err := op(rng); err != nil {
					errs.Add(1)
					continue
				}
				lat[w] = append(lat[w], float64(time.Since(t0).Microseconds()))
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	cpu, gc := bench.CPUTime()-cpu0, bench.GC().Sub(gc0)
	var all []float64
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Float64s(all)
	p := Phase{Ops: ops.Load(), Errors: errs.Load(), OpsPerSec: float64(ops.Load()) / el}
	if len(all) > 0 {
		p.P50us = all[len(all)/2]
		p.P99us = all[len(all)*99/100]
	}
	p.GCCycles = gc.Cycles
	if p.Ops > 0 {
		p.CPUus = float64(cpu.Microseconds()) / float64(p.Ops)
		p.GCus = float64(gc.CPU.Microseconds()) / float64(p.Ops)
		p.AllocBytes = float64(gc.Allocated) / float64(p.Ops)
	}
	fmt.Fprintf(cfg.Progress, "%s: %.0f ops/s, p50 %.0f µs, p99 %.0f µs, %.1f µs CPU/op (GC %.1f µs, %d cycles), %.0f B allocated/op, %d errors\n", name, p.OpsPerSec, p.P50us, p.P99us, p.CPUus, p.GCus, p.GCCycles, p.AllocBytes, p.Errors)
	return p
}

func runPostgres(ctx context.Context, cfg Config, res *Result) error {
	pcfg, err := pgxpool.ParseConfig(cfg.Postgres)
	if err != nil {
		return err
	}
	pcfg.MaxConns = int32(cfg.Conns)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return err
	}
	for _, q := range []string{
		`DROP TABLE IF EXISTS twinload_rels, twinload_twins`,
		`CREATE TABLE twinload_twins (id text PRIMARY KEY, model text NOT NULL, doc jsonb NOT NULL)`,
		`CREATE TABLE twinload_rels (src text NOT NULL, id text NOT NULL, name text NOT NULL, tgt text NOT NULL, props jsonb, PRIMARY KEY (src, id))`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return err
		}
	}
	fmt.Fprintf(cfg.Progress, "postgres: loading\n")
	start := time.Now()
	var twinRows, relRows [][]any
	stdgraph.Generate(cfg.Graph, func(t stdgraph.Twin) error {
		doc, _ := json.Marshal(t.Properties)
		twinRows = append(twinRows, []any{t.ID, t.Model, string(doc)})
		return nil
	}, func(r stdgraph.Relationship) error {
		relRows = append(relRows, []any{r.Source, r.ID, r.Name, r.Target, "{}"})
		return nil
	})
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"twinload_twins"}, []string{"id", "model", "doc"}, pgx.CopyFromRows(twinRows)); err != nil {
		return err
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"twinload_rels"}, []string{"src", "id", "name", "tgt", "props"}, pgx.CopyFromRows(relRows)); err != nil {
		return err
	}
	for _, q := range []string{
		`CREATE INDEX ON twinload_twins (model)`,
		`CREATE INDEX ON twinload_rels (tgt)`,
		`ANALYZE twinload_twins`, `ANALYZE twinload_rels`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return err
		}
	}
	res.PGLoadSeconds = time.Since(start).Seconds()
	twinRows, relRows = nil, nil
	res.PG["GET"] = phase(ctx, cfg, "postgres GET", func(rng *rand.Rand) error {
		var doc []byte
		return pool.QueryRow(ctx, `SELECT doc FROM twinload_twins WHERE id = $1`, roomID(cfg.Graph, rng)).Scan(&doc)
	})
	res.PG["PATCH"] = phase(ctx, cfg, "postgres PATCH", func(rng *rand.Rand) error {
		_, err := pool.Exec(ctx, `UPDATE twinload_twins SET doc = jsonb_set(doc, '{temperature}', to_jsonb($1::float8)) WHERE id = $2`,
			15+rng.Float64()*15, roomID(cfg.Graph, rng))
		return err
	})
	_, err = pool.Exec(ctx, `DROP TABLE IF EXISTS twinload_rels, twinload_twins`)
	return err
}

func rss() uint64 { return procStatus("VmRSS:") }

// peakRSS returns the process's peak resident set size so far.
func peakRSS() uint64 { return procStatus("VmHWM:") }

// procStatus returns a size field of /proc/self/status, in bytes.
func procStatus(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
