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
	// Replayed counts the events applied by builds.
	Replayed uint64
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
	pos, err := t.Resolve(ctx, at)
	if err != nil {
		return nil, err
	}
	return t.Position(ctx, pos)
}

// Position returns the graph right after the event at pos was applied (pos
// 0: the empty graph). pos must not be beyond the log's head.
func (t *Traveler) Position(ctx context.Context, pos uint64) (*twingraph.Snapshot, error) {
	if t.live != nil {
		if s := t.live.Snapshot(); s.Position() == pos {
			t.count(func(s *Stats) { s.Live++ })
			return s, nil
		}
	}
	t.mu.Lock()
	if e, ok := t.mu.entries[pos]; ok {
		t.mu.tick++
		e.used = t.mu.tick
		t.mu.Unlock()
		t.count(func(s *Stats) { s.Hits++ })
		return e.snap, nil
	}
	if b, ok := t.mu.building[pos]; ok {
		t.mu.Unlock()
		select {
		case <-b.done:
			return b.snap, b.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	b := &build{done: make(chan struct{})}
	t.mu.building[pos] = b
	t.mu.Unlock()

	// The build runs under its own context: waiters on the same position
	// share it, so one caller giving up must not fail the others.
	g, err := t.build(context.WithoutCancel(ctx), pos)
	t.mu.Lock()
	delete(t.mu.building, pos)
	if err == nil {
		b.snap = g.Snapshot()
		t.insertLocked(b.snap)
	}
	b.err = err
	t.mu.Unlock()
	close(b.done)
	return b.snap, b.err
}

// build returns a graph at pos, started from the best of: a fork of the
// newest cached graph at or before pos, the newest usable checkpoint at or
// before pos (kept in the cache, so later builds between it and the next
// fork it instead of loading it again), or an empty graph.
func (t *Traveler) build(ctx context.Context, pos uint64) (*twingraph.Graph, error) {
	cps := t.checkpoints(pos)
	t.mu.Lock()
	var base *entry
	for p, e := range t.mu.entries {
		if p <= pos && (base == nil || p > base.snap.Position()) {
			base = e
		}
	}
	var g *twingraph.Graph
	if base != nil && (len(cps) == 0 || base.snap.Position() >= cps[0].pos) {
		t.mu.tick++
		base.used = t.mu.tick
		g = base.snap.Fork()
	}
	t.mu.Unlock()
	loaded := false
	if g == nil {
		for _, cp := range cps {
			lg, err := loadCheckpoint(cp.path, t.opts.Graph)
			if err == nil && lg.Position() != cp.pos {
				err = fmt.Errorf("holds position %d", lg.Position())
			}
			if err != nil {
				t.opts.Logger.Warn("checkpoint unusable, skipped", "file", cp.path, "err", err)
				continue
			}
			g, loaded = lg, true
			if cp.pos < pos {
				t.mu.Lock()
				t.insertLocked(lg.Snapshot())
				t.mu.Unlock()
			}
			break
		}
	}
	if g == nil {
		g = twingraph.New(t.opts.Graph)
	}
	from := g.Position()
	if err := replay(ctx, t.log, g, pos, t.opts.ReadBatch); err != nil {
		return nil, err
	}
	t.count(func(s *Stats) {
		s.Builds++
		s.Replayed += pos - from
		if loaded {
			s.Loaded++
		}
	})
	return g, nil
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

// insertLocked caches snap, evicting the least recently used entries beyond
// the bounds.
func (t *Traveler) insertLocked(snap *twingraph.Snapshot) {
	t.mu.tick++
	e := &entry{snap: snap, bytes: estimate(snap), used: t.mu.tick}
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

// estimate returns the estimated heap of a graph's twins and relationships.
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
