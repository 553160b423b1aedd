package timetravel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// Checkpoint files are twingraph snapshot files (twingraph.SnapshotPath),
// so a Traveler reads the live snapshot directory and the history directory
// alike.

// listCheckpoints returns the positions of the snapshot files in dir,
// oldest first. A missing directory has none.
func listCheckpoints(dir string) ([]uint64, error) {
	cps, err := twingraph.SnapshotPositions(dir)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	return cps, nil
}

// writeCheckpoint writes snap into dir atomically and returns its size.
func writeCheckpoint(dir string, snap *twingraph.Snapshot) (int64, error) {
	n, err := twingraph.WriteSnapshotFile(dir, snap)
	if err != nil {
		return 0, fmt.Errorf("write checkpoint %d: %w", snap.Position(), err)
	}
	return n, nil
}

// loadCheckpoint loads a checkpoint into a graph that keeps applying (see
// Backfill).
func loadCheckpoint(path string, opts twingraph.Options) (*twingraph.Graph, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return twingraph.LoadSnapshot(f, opts)
}

// loadView loads a checkpoint as a read view and, when r is not nil (r
// reads the log right after it), folds what r reads into the load when it
// can (twingraph.LoadSnapshotViewAt): the graph is then at r's last
// position, with folded set.
func loadView(path string, opts twingraph.Options, r *reader) (g *twingraph.Graph, folded bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	if r == nil {
		g, err = twingraph.LoadSnapshotView(f, opts)
		return g, false, err
	}
	return twingraph.LoadSnapshotViewAt(f, opts, r.collect)
}

// CheckpointOptions is the history-snapshot policy. The zero value is
// valid.
type CheckpointOptions struct {
	// Every writes a checkpoint once the graph has applied this many events
	// since the last one, and at least as many as the graph has twins: a
	// checkpoint costs in proportion to the graph's size, so spacing them
	// by it keeps their share of the node's work bounded (a 1,000,000-twin
	// graph gets one every 1,000,000 events, not ten). It bounds the replay
	// of an AS OF read to that many events (plus loading one snapshot).
	// Default 100,000.
	Every uint64
	// MaxFiles bounds the checkpoint files. When a new one would exceed it,
	// every other checkpoint of the older half is removed: old history gets
	// sparser (slower to reach) instead of disappearing. Default 256.
	MaxFiles int
	// Poll is how often the background loop looks at the graph's position.
	// Default 1 second.
	Poll time.Duration
	// Adopt is a directory of snapshot files of the same graph written by
	// something else (the node's twingraph.Snapshotter), "" for none. A
	// snapshot there at least half the spacing past the last checkpoint
	// becomes the next checkpoint by a hard link instead of the graph being
	// serialized a second time; a checkpoint then comes at most half the
	// spacing early, and history keeps it after the other directory drops
	// its name.
	Adopt string
	// Logger receives reports of background checkpoints. Default
	// slog.Default().
	Logger *slog.Logger
}

// Validate reports invalid options.
func (o *CheckpointOptions) Validate() error {
	if o.MaxFiles < 0 || o.Poll < 0 {
		return errors.New("timetravel: negative checkpoint option")
	}
	if o.MaxFiles == 1 {
		return errors.New("timetravel: MaxFiles must be at least 2")
	}
	return nil
}

func (o *CheckpointOptions) defaults() {
	if o.Every == 0 {
		o.Every = 100_000
	}
	if o.MaxFiles == 0 {
		o.MaxFiles = 256
	}
	if o.Poll == 0 {
		o.Poll = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Checkpointer keeps history checkpoints of a live graph in a directory:
// a snapshot every Every events, thinned as they accumulate (see
// CheckpointOptions). Snapshots are serialized from published read views
// in the checkpointer's goroutine, so the graph keeps applying. It is the
// history counterpart of twingraph.Snapshotter, which keeps only the
// newest few for restarts.
type Checkpointer struct {
	dir  string
	g    *twingraph.Graph
	opts CheckpointOptions

	mu struct {
		sync.Mutex
		last uint64
	}
	stop chan struct{}
	done chan struct{}
}

// NewCheckpointer returns a checkpointer of g into dir, which it creates.
func NewCheckpointer(dir string, g *twingraph.Graph, opts CheckpointOptions) (*Checkpointer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.defaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create checkpoint dir: %w", err)
	}
	c := &Checkpointer{dir: dir, g: g, opts: opts}
	cps, err := listCheckpoints(dir)
	if err != nil {
		return nil, err
	}
	if len(cps) > 0 {
		c.mu.last = cps[len(cps)-1]
	}
	return c, nil
}

// Dir returns the checkpoint directory.
func (c *Checkpointer) Dir() string { return c.dir }

// Start checkpoints in the background until Stop.
func (c *Checkpointer) Start() {
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.run()
}

func (c *Checkpointer) run() {
	defer close(c.done)
	tick := time.NewTicker(c.opts.Poll)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		if _, err := c.Maybe(); err != nil {
			c.opts.Logger.Error("history checkpoint", "err", err)
		}
	}
}

// Stop stops the background loop, waiting for a checkpoint in progress.
func (c *Checkpointer) Stop() {
	if c.stop != nil {
		close(c.stop)
		<-c.done
		c.stop = nil
	}
}

// Maybe writes a checkpoint of the graph when it has moved at least Every
// events (and as many as it has twins) past the last one, and reports
// whether it wrote one.
func (c *Checkpointer) Maybe() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	snap := c.g.Snapshot()
	every := spacing(c.opts.Every, snap)
	if c.opts.Adopt != "" && snap.Position() >= c.mu.last+every/2 {
		if ok, err := c.adoptLocked(every); ok || err != nil {
			return ok, err
		}
	}
	if snap.Position() < c.mu.last+every {
		return false, nil
	}
	if c.opts.Adopt != "" && snap.Position() < c.mu.last+2*every && twingraph.SnapshotWriting(c.opts.Adopt) {
		// The snapshotter is writing one (both fall due together on
		// a large graph): adopt it when it is done, up to one spacing
		// late.
		return false, nil
	}
	start := time.Now()
	if err := c.writeLocked(snap); err != nil {
		return true, err
	}
	c.opts.Logger.Info("history checkpoint written", "position", snap.Position(), "took", time.Since(start).Round(time.Millisecond))
	return true, nil
}

// adoptLocked links the newest snapshot of c.opts.Adopt into the history
// when it is at least half of every past the last checkpoint, and reports
// whether it did. A link that cannot be made (another file system) is
// not an error: the checkpoint is then written when due.
func (c *Checkpointer) adoptLocked(every uint64) (bool, error) {
	ps, err := twingraph.SnapshotPositions(c.opts.Adopt)
	if err != nil || len(ps) == 0 {
		return false, nil
	}
	pos := ps[len(ps)-1]
	if pos < c.mu.last+every/2 {
		return false, nil
	}
	if err := os.Link(twingraph.SnapshotPath(c.opts.Adopt, pos), twingraph.SnapshotPath(c.dir, pos)); err != nil && !errors.Is(err, os.ErrExist) {
		c.opts.Logger.Debug("history checkpoint not adopted", "position", pos, "err", err)
		return false, nil
	}
	if err := twingraph.SyncDir(c.dir); err != nil {
		return false, err
	}
	c.mu.last = pos
	c.opts.Logger.Info("history checkpoint adopted", "position", pos)
	return true, thin(c.dir, c.opts.MaxFiles)
}

// spacing is how many events a checkpoint of snap waits for after the last:
// every, and at least as many as the graph has twins.
func spacing(every uint64, snap *twingraph.Snapshot) uint64 {
	return max(every, uint64(snap.TwinCount()))
}

// Take writes a checkpoint of the graph as of now, unless one exists at
// its position, and returns the position.
func (c *Checkpointer) Take() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	snap := c.g.Snapshot()
	if snap.Position() == c.mu.last || snap.Position() == 0 {
		return snap.Position(), nil
	}
	return snap.Position(), c.writeLocked(snap)
}

func (c *Checkpointer) writeLocked(snap *twingraph.Snapshot) error {
	if _, err := writeCheckpoint(c.dir, snap); err != nil {
		return err
	}
	c.mu.last = snap.Position()
	return thin(c.dir, c.opts.MaxFiles)
}

// thin removes every other checkpoint of the older half of dir while it
// holds more than max files; the newest is always kept.
func thin(dir string, max int) error {
	cps, err := listCheckpoints(dir)
	if err != nil {
		return err
	}
	var errs []error
	for len(cps) > max {
		half := len(cps) / 2
		kept := cps[:0:0]
		for i, pos := range cps {
			if i < half && i%2 == 1 {
				if err := os.Remove(twingraph.SnapshotPath(dir, pos)); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
				continue
			}
			kept = append(kept, pos)
		}
		if len(kept) == len(cps) {
			break
		}
		cps = kept
	}
	return errors.Join(errs...)
}

// Backfill writes history checkpoints into dir for the part of the log that
// has none: it replays the log from the newest checkpoint in dir (or from
// the start) up to the head in a private graph, writing a checkpoint every
// opts.Every events. Run it once when enabling history on an existing log,
// or after losing the directory. It returns the number of checkpoints
// written.
func Backfill(ctx context.Context, log eventlog.Log, dir string, graph twingraph.Options, opts CheckpointOptions) (int, error) {
	if err := opts.Validate(); err != nil {
		return 0, err
	}
	opts.defaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("create checkpoint dir: %w", err)
	}
	head, err := log.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("read head: %w", err)
	}
	cps, err := listCheckpoints(dir)
	if err != nil {
		return 0, err
	}
	g := twingraph.New(graph)
	for i := len(cps) - 1; i >= 0; i-- {
		if cps[i] > head {
			continue
		}
		if lg, err := loadCheckpoint(twingraph.SnapshotPath(dir, cps[i]), graph); err == nil {
			g = lg
			break
		}
	}
	written := 0
	next := g.Position() + opts.Every
	for g.Position() < head {
		// Replayed up to each checkpoint's position exactly, whatever the
		// read batch.
		if err := replay(ctx, log, g, min(head, next), defaultReadBatch); err != nil {
			return written, err
		}
		if g.Position() < next {
			break
		}
		if _, err := writeCheckpoint(dir, g.Snapshot()); err != nil {
			return written, err
		}
		written++
		next = g.Position() + spacing(opts.Every, g.Snapshot())
		if err := thin(dir, opts.MaxFiles); err != nil {
			return written, err
		}
	}
	return written, nil
}

// defaultReadBatch is the most events a replay reads and applies at once.
// A twin patched several times within one batch is copied once (the
// graph changes in place what its batch made), so large batches rebuild
// faster: 10,000 twins patched round-robin replayed at ~1.0 M events/s
// in batches of 4,096 events, ~1.6-2.1 M events/s in batches of 65,536.
// A replay holds two batches (see replay), ~15 MB each of small events.
const defaultReadBatch = 65536

// Replay applies the log after g's position up to and including pos,
// reading the next batch while it applies one.
func Replay(ctx context.Context, log eventlog.Log, g *twingraph.Graph, pos uint64) error {
	return replay(ctx, log, g, pos, defaultReadBatch)
}

// replay applies the log after g's position up to and including pos, in
// batches of at most batch events. The next batch is read on another
// goroutine while one is applied.
func replay(ctx context.Context, log eventlog.Log, g *twingraph.Graph, pos uint64, batch int) error {
	if g.Position() >= pos {
		return nil
	}
	r := readAhead(ctx, log, g.Position()+1, pos, batch)
	defer r.stop()
	_, err := r.apply(ctx, g)
	return err
}

// reader reads the log from one position up to and including another on
// a goroutine of its own, a batch ahead of the one consuming it: a replay
// applies a batch while the next is read, and a build starts reading
// while it loads the checkpoint it replays from.
type reader struct {
	from, to uint64
	reads    chan readBatch
	cancel   context.CancelFunc
	// kept are the batches collect read and apply has not applied yet;
	// done is set once collect has read to the end, or to the error in
	// err.
	kept [][]event.Event
	done bool
	err  error
}

type readBatch struct {
	evs []event.Event
	err error
}

// readAhead starts reading the log from position from up to and including
// to, in batches of at most batch events. The caller must stop it.
func readAhead(ctx context.Context, log eventlog.Log, from, to uint64, batch int) *reader {
	rctx, cancel := context.WithCancel(ctx)
	r := &reader{from: from, to: to, reads: make(chan readBatch, 1), cancel: cancel}
	go func() {
		defer close(r.reads)
		for from <= to {
			if err := rctx.Err(); err != nil {
				r.reads <- readBatch{err: err}
				return
			}
			evs, err := log.Read(rctx, from, int(min(uint64(batch), to-from+1)))
			if err == nil && len(evs) == 0 {
				err = eventlog.ErrOutOfRange
			}
			if err != nil {
				r.reads <- readBatch{err: fmt.Errorf("read log at %d: %w", from, err)}
				return
			}
			if last := evs[len(evs)-1].Position; last > to {
				n := 0
				for n < len(evs) && evs[n].Position <= to {
					n++
				}
				evs = evs[:n]
			}
			select {
			case r.reads <- readBatch{evs: evs}:
			case <-rctx.Done():
				return
			}
			from = evs[len(evs)-1].Position + 1
		}
	}()
	return r
}

// stop ends the reading and waits for its goroutine.
func (r *reader) stop() {
	r.cancel()
	for range r.reads {
	}
}

// collect reads up to the end and returns everything read, which it keeps
// for apply; nil when the read failed (apply then reports why).
func (r *reader) collect() [][]event.Event {
	for b := range r.reads {
		if b.err != nil {
			r.done, r.err = true, b.err
			return nil
		}
		r.kept = append(r.kept, b.evs)
	}
	r.done = true
	if n := len(r.kept); n == 0 || r.kept[n-1][len(r.kept[n-1])-1].Position != r.to {
		return nil
	}
	return r.kept
}

// next returns the next batch to apply.
func (r *reader) next() readBatch {
	if len(r.kept) > 0 {
		b := r.kept[0]
		r.kept = r.kept[1:]
		return readBatch{evs: b}
	}
	if r.done {
		return readBatch{err: r.err}
	}
	b, ok := <-r.reads
	if !ok {
		r.done = true
	}
	return b
}

// apply applies what r reads to g, which must be at the position before
// r's first, and returns how many relationships the events it applied
// created, less those they deleted.
func (r *reader) apply(ctx context.Context, g *twingraph.Graph) (rels int, err error) {
	if g.Position()+1 != r.from {
		return 0, fmt.Errorf("replay from %d onto a graph at %d", r.from, g.Position())
	}
	for g.Position() < r.to {
		b := r.next()
		if b.err != nil {
			if err := ctx.Err(); err != nil {
				return rels, err
			}
			return rels, b.err
		}
		if b.evs == nil {
			return rels, fmt.Errorf("replay to %d: the log ended at %d", r.to, g.Position())
		}
		if err := g.Apply(b.evs); err != nil {
			return rels, fmt.Errorf("apply at %d: %w", b.evs[0].Position, err)
		}
		for i := range b.evs {
			switch b.evs[i].Type {
			case twingraph.TypeRelationshipCreated:
				rels++
			case twingraph.TypeRelationshipDeleted:
				rels--
			}
		}
	}
	return rels, nil
}
