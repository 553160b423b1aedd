package timetravel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// Options configures a Traveler. The zero value is valid.
type Options struct {
	// Dirs are the directories holding checkpoints (snapshot files named
	// as twingraph's Snapshotter names them): typically the live
	// snapshots directory and a Checkpointer's. Default none: every
	// historical graph is replayed from the start of the log.
	Dirs []string
	// Graph configures the graphs loaded and replayed. Default zero.
	Graph twingraph.Options
	// CacheEntries bounds the cached historical graphs. Default 8.
	CacheEntries int
	// CacheBytes bounds the estimated memory of the cached graphs (about
	// 600 bytes per twin and per relationship, counted per entry even when
	// entries share structure). Default 1 GiB. The graph just built is
	// always kept, even alone over the bound.
	CacheBytes int64
	// ReadBatch is the most events read and applied at once during a
	// replay. Default 65536 (see defaultReadBatch).
	ReadBatch int
	// Logger receives reports of unusable checkpoints. Default
	// slog.Default().
	Logger *slog.Logger
}

// Validate reports invalid options.
func (o *Options) Validate() error {
	if o.CacheEntries < 0 || o.CacheBytes < 0 || o.ReadBatch < 0 {
		return errors.New("timetravel: negative option")
	}
	return nil
}

// bytesPerItem estimates the heap of one twin or relationship of a loaded
// graph (twingraph measures about 530 on the standard shape).
const bytesPerItem = 600

// Traveler builds and caches the twin graph as of past points of a log.
// It is safe for concurrent use.
type Traveler struct {
	log  eventlog.Log
	live *twingraph.Graph
	opts Options

	mu struct {
		sync.Mutex
		entries  map[uint64]*entry
		tick     uint64 // LRU clock
		bytes    int64
		building map[uint64]*build
	}
	stats struct {
		sync.Mutex
		Stats
	}
}

// entry is a cached historical read view. A build for a later position
// starts from a fork of it (twingraph.Snapshot.Fork), which shares its
// structure.
type entry struct {
	snap  *twingraph.Snapshot
	bytes int64
	used  uint64
}

type build struct {
	done chan struct{}
	snap *twingraph.Snapshot
	err  error
}

// Stats counts how AsOf requests were served.
type Stats struct {
	// Live counts requests answered by the live graph.
	Live uint64
	// Hits counts requests answered from the cache.
	Hits uint64
	// Builds counts graphs built; Loaded of them started from a checkpoint
	// file, the others from a cached graph or the start of the log.
	Builds, Loaded uint64
	// Replayed counts the events applied by builds; Folded of them were
	// folded into the load of a checkpoint (see
	// twingraph.LoadSnapshotViewAt) rather than applied one by one.
	Replayed, Folded uint64
}

// New returns a Traveler over log. live, when not nil, is the live graph:
// requests for its current position are answered by it without a build.
func New(log eventlog.Log, live *twingraph.Graph, opts Options) (*Traveler, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.CacheEntries == 0 {
		opts.CacheEntries = 8
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = 1 << 30
	}
	if opts.ReadBatch == 0 {
		opts.ReadBatch = defaultReadBatch
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	t := &Traveler{log: log, live: live, opts: opts}
	t.mu.entries = map[uint64]*entry{}
	t.mu.building = map[uint64]*build{}
	return t, nil
}

// Log returns the traveler's log.
func (t *Traveler) Log() eventlog.Log { return t.log }

// Live returns the live graph given to New (nil when none).
func (t *Traveler) Live() *twingraph.Graph { return t.live }

// Stats returns the counters so far.
func (t *Traveler) Stats() Stats {
	t.stats.Lock()
	defer t.stats.Unlock()
	return t.stats.Stats
}

// ErrFuture is wrapped by the error for a position beyond the log's head.
var ErrFuture = errors.New("timetravel: position beyond the log head")

// Resolve returns the log position at: a position as is (checked against
// the head), the position of the last event at or before a time (0 when
// the log had nothing yet), or the head for the zero At. A time after the
// last event resolves to the head.
func (t *Traveler) Resolve(ctx context.Context, at At) (uint64, error) {
	head, err := t.log.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("read head: %w", err)
	}
	switch {
	case at.Position != 0:
		if at.Position > head {
			return 0, &engine.Error{Kind: engine.KindInvalid, Code: "InvalidArgument",
				Message: fmt.Sprintf("position %d is beyond the log's head (%d)", at.Position, head), Err: ErrFuture}
		}
		return at.Position, nil
	case at.Time.IsZero():
		return head, nil
	}
	// SeekTime finds the first event at or after a time; the state as of
	// t includes every event at t, so seek just past it.
	next, err := t.log.SeekTime(ctx, at.Time.Add(time.Nanosecond))
	if err != nil {
		return 0, fmt.Errorf("seek %s: %w", at.Time.Format(time.RFC3339Nano), err)
	}
	return min(next-1, head), nil
}

// AsOf returns the graph as of at (see Resolve). The view is immutable and
// may be shared with other callers.
func (t *Traveler) AsOf(ctx context.Context, at At) (*twingraph.Snapshot, error) {
	snap, cached, err := t.asOf(ctx, at)
	cached()
	return snap, err
}

// asOf is AsOf, returning before the graph it built is cached: cached
// waits for that.
func (t *Traveler) asOf(ctx context.Context, at At) (_ *twingraph.Snapshot, cached func(), _ error) {
	pos, err := t.Resolve(ctx, at)
	if err != nil {
		return nil, func() {}, err
	}
	return t.position(ctx, pos)
}

// Position returns the graph right after the event at pos was applied (pos
// 0: the empty graph). pos must not be beyond the log's head.
func (t *Traveler) Position(ctx context.Context, pos uint64) (*twingraph.Snapshot, error) {
	snap, cached, err := t.position(ctx, pos)
	cached()
	return snap, err
}

// position is Position, returning as soon as the graph is built: its size
// is estimated and it is cached on another goroutine, which cached waits
// for, so that a query can run on it meanwhile. Until then, requests for
// the same position get it as waiters of its build do.
func (t *Traveler) position(ctx context.Context, pos uint64) (_ *twingraph.Snapshot, cached func(), _ error) {
	none := func() {}
	if t.live != nil {
		if s := t.live.Snapshot(); s.Position() == pos {
			t.count(func(s *Stats) { s.Live++ })
			return s, none, nil
		}
	}
	t.mu.Lock()
	if e, ok := t.mu.entries[pos]; ok {
		t.mu.tick++
		e.used = t.mu.tick
		t.mu.Unlock()
		t.count(func(s *Stats) { s.Hits++ })
		return e.snap, none, nil
	}
	if b, ok := t.mu.building[pos]; ok {
		t.mu.Unlock()
		select {
		case <-b.done:
			return b.snap, none, b.err
		case <-ctx.Done():
			return nil, none, ctx.Err()
		}
	}
	b := &build{done: make(chan struct{})}
	t.mu.building[pos] = b
	t.mu.Unlock()

	// The build runs under its own context: waiters on the same position
	// share it, so one caller giving up must not fail the others.
	g, est, err := t.build(context.WithoutCancel(ctx), pos)
	if err != nil {
		t.mu.Lock()
		delete(t.mu.building, pos)
		b.err = err
		t.mu.Unlock()
		close(b.done)
		return nil, none, err
	}
	b.snap = g.Snapshot()
	close(b.done)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e := est()
		t.mu.Lock()
		delete(t.mu.building, pos)
		t.insertLocked(b.snap, e)
		t.mu.Unlock()
	}()
	return b.snap, func() { <-done }, nil
}

// build returns a graph at pos and a function returning its estimated size
// (see estimate),
// started from the best of: a fork of the newest cached graph at or before
// pos, the newest usable checkpoint at or before pos (kept in the cache, so
// later builds between it and the next fork it instead of loading it
// again), or an empty graph. The log after the checkpoint is read while the
// checkpoint loads, and folded into the load when it can be (then the
// checkpoint's own state is not kept). The estimate is the start's plus
// what the replay added or removed, rather than another walk over every
// twin.
func (t *Traveler) build(ctx context.Context, pos uint64) (*twingraph.Graph, func() int64, error) {
	cps := t.checkpoints(pos)
	t.mu.Lock()
	var base *entry
	for p, e := range t.mu.entries {
		if p <= pos && (base == nil || p > base.snap.Position()) {
			base = e
		}
	}
	var g *twingraph.Graph
	var baseEst chan int64 // the estimate of where the build starts
	if base != nil && (len(cps) == 0 || base.snap.Position() >= cps[0].pos) {
		t.mu.tick++
		base.used = t.mu.tick
		g = base.snap.Fork()
		baseEst = make(chan int64, 1)
		baseEst <- base.bytes
	}
	t.mu.Unlock()
	var r *reader
	defer func() {
		if r != nil {
			r.stop()
		}
	}()
	var loaded *twingraph.Snapshot // the checkpoint, to cache
	var start *twingraph.Snapshot  // where the estimate starts
	var from uint64                // where the replay starts
	fromCheckpoint, folded := false, false
	if g == nil {
		for _, cp := range cps {
			if cp.pos < pos {
				r = readAhead(ctx, t.log, cp.pos+1, pos, t.opts.ReadBatch)
			}
			lg, fold, err := loadView(cp.path, t.opts.Graph, r)
			if err == nil && !fold && lg.Position() != cp.pos {
				err = fmt.Errorf("holds position %d", lg.Position())
			}
			if err != nil {
				t.opts.Logger.Warn("checkpoint unusable, skipped", "file", cp.path, "err", err)
				if r != nil {
					r.stop()
					r = nil
				}
				continue
			}
			g, fromCheckpoint, start, folded, from = lg, true, lg.Snapshot(), fold, cp.pos
			if cp.pos < pos && !fold {
				loaded = start
			}
			// Estimated while the log is replayed onto it (folded, the
			// graph is at pos already, with the checkpoint's twins and
			// relationships).
			baseEst = make(chan int64, 1)
			go func() { baseEst <- estimate(start) }()
			break
		}
	}
	if g == nil {
		g = twingraph.New(t.opts.Graph)
		baseEst = make(chan int64, 1)
		baseEst <- 0
	}
	if start == nil {
		start, from = g.Snapshot(), g.Position()
	}
	rels := 0
	if g.Position() < pos {
		if r == nil {
			r = readAhead(ctx, t.log, g.Position()+1, pos, t.opts.ReadBatch)
		}
		var err error
		if rels, err = r.apply(ctx, g); err != nil {
			<-baseEst
			return nil, nil, err
		}
	}
	t.count(func(s *Stats) {
		s.Builds++
		s.Replayed += pos - from
		if fromCheckpoint {
			s.Loaded++
		}
		if folded {
			s.Folded += pos - from
		}
	})
	items := int64(g.Snapshot().TwinCount()-start.TwinCount()) + int64(rels)
	if loaded == nil {
		// Folded (or from a cached graph, or the start of the log): the
		// start's estimate may still be on its way.
		return g, func() int64 { return <-baseEst + items*bytesPerItem }, nil
	}
	// Cached only now, with the graph built from it: the replay changed
	// copies, never the checkpoint's own objects.
	startEst := <-baseEst
	t.mu.Lock()
	t.insertLocked(loaded, startEst)
	t.mu.Unlock()
	return g, func() int64 { return startEst + items*bytesPerItem }, nil
}

type checkpoint struct {
	path string
	pos  uint64
}

// checkpoints returns the checkpoint files at or before pos in every
// directory, newest first.
func (t *Traveler) checkpoints(pos uint64) []checkpoint {
	var out []checkpoint
	for _, dir := range t.opts.Dirs {
		cps, err := listCheckpoints(dir)
		if err != nil {
			t.opts.Logger.Warn("checkpoint directory unreadable", "dir", dir, "err", err)
			continue
		}
		for _, p := range cps {
			if p <= pos && p > 0 {
				out = append(out, checkpoint{twingraph.SnapshotPath(dir, p), p})
			}
		}
	}
	slices.SortFunc(out, func(a, b checkpoint) int { return cmp.Compare(b.pos, a.pos) })
	return out
}

// insertLocked caches snap, whose estimated size is est, evicting the
// least recently used entries beyond the bounds.
func (t *Traveler) insertLocked(snap *twingraph.Snapshot, est int64) {
	t.mu.tick++
	e := &entry{snap: snap, bytes: est, used: t.mu.tick}
	if old, ok := t.mu.entries[snap.Position()]; ok {
		t.mu.bytes -= old.bytes
	}
	t.mu.entries[snap.Position()] = e
	t.mu.bytes += e.bytes
	for len(t.mu.entries) > t.opts.CacheEntries || (t.mu.bytes > t.opts.CacheBytes && len(t.mu.entries) > 1) {
		var victim *entry
		for _, c := range t.mu.entries {
			if c != e && (victim == nil || c.used < victim.used) {
				victim = c
			}
		}
		if victim == nil {
			return
		}
		delete(t.mu.entries, victim.snap.Position())
		t.mu.bytes -= victim.bytes
	}
}

// estimate returns the estimated heap of a graph's twins and relationships
// (bytesPerItem each).
func estimate(s *twingraph.Snapshot) int64 {
	var n int64
	for tw := range s.Twins() {
		n += 1 + int64(len(tw.Out))
	}
	return n * bytesPerItem
}

func (t *Traveler) count(f func(*Stats)) {
	t.stats.Lock()
	f(&t.stats.Stats)
	t.stats.Unlock()
}
