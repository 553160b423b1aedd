package twingraph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SnapshotterOptions configures a Snapshotter. The zero value is valid.
type SnapshotterOptions struct {
	// Every takes a snapshot once the graph has applied this many events
	// since the last one. Default 1,000,000.
	Every uint64
	// Interval takes a snapshot when this much time has passed since the
	// last one and the graph has moved. Default 5 minutes.
	Interval time.Duration
	// Keep is how many snapshot files are kept; older ones are removed.
	// Default 2.
	Keep int
	// Logger receives reports of background snapshots. Default
	// slog.Default().
	Logger *slog.Logger
}

// Validate reports invalid options.
func (o *SnapshotterOptions) Validate() error {
	if o.Interval < 0 || o.Keep < 0 {
		return errors.New("twingraph: negative snapshotter option")
	}
	return nil
}

const (
	snapPrefix = "graph-"
	snapSuffix = ".snap"
)

// Snapshotter writes snapshots of a Graph into a directory: in the
// background, every Every events or Interval, and on demand with Take. A
// snapshot is serialized from a published Snapshot in the snapshotter's
// goroutine, so the graph keeps applying meanwhile. Files are named by
// position, written to a temporary file, synced and renamed into place, so
// a crash leaves either the old set or the new one; the newest Keep are
// kept.
type Snapshotter struct {
	dir  string
	g    *Graph
	opts SnapshotterOptions

	mu struct {
		sync.Mutex
		last uint64 // position of the newest snapshot written
		at   time.Time
	}
	stop chan struct{}
	done chan struct{}
}

// NewSnapshotter returns a snapshotter of g into dir, which it creates. The
// graph's current position counts as snapshotted (it was just loaded from
// one, or replayed). Call Start to snapshot in the background.
func NewSnapshotter(dir string, g *Graph, opts SnapshotterOptions) (*Snapshotter, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Every == 0 {
		opts.Every = 1_000_000
	}
	if opts.Interval == 0 {
		opts.Interval = 5 * time.Minute
	}
	if opts.Keep == 0 {
		opts.Keep = 2
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create snapshot dir: %w", err)
	}
	s := &Snapshotter{dir: dir, g: g, opts: opts}
	s.mu.last, s.mu.at = g.Position(), time.Now()
	return s, nil
}

// Start snapshots in the background until Stop.
func (s *Snapshotter) Start() {
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.run()
}

func (s *Snapshotter) run() {
	defer close(s.done)
	tick := time.NewTicker(min(time.Second, s.opts.Interval))
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		last, at := s.mu.last, s.mu.at
		s.mu.Unlock()
		pos := s.g.Position()
		if pos <= last || (pos-last < s.opts.Every && time.Since(at) < s.opts.Interval) {
			continue
		}
		start := time.Now()
		if _, err := s.Take(); err != nil {
			s.opts.Logger.Error("snapshot", "err", err)
			// Try again after a full interval, not every tick.
			s.mu.Lock()
			s.mu.at = time.Now()
			s.mu.Unlock()
			continue
		}
		s.opts.Logger.Info("snapshot written", "position", pos, "took", time.Since(start).Round(time.Millisecond))
	}
}

// Stop stops the background snapshots, waiting for one in progress.
func (s *Snapshotter) Stop() {
	if s.stop != nil {
		close(s.stop)
		<-s.done
		s.stop = nil
	}
}

// Take writes a snapshot of the graph as of now and returns its position.
// Concurrent calls are serialized; a call finding the newest snapshot
// already at the graph's position writes nothing.
func (s *Snapshotter) Take() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.g.Snapshot()
	if snap.Position() == s.mu.last && s.hasFile(snap.Position()) {
		return snap.Position(), nil
	}
	if _, err := WriteSnapshotFile(s.dir, snap); err != nil {
		return 0, err
	}
	s.mu.last, s.mu.at = snap.Position(), time.Now()
	return snap.Position(), s.prune()
}

func (s *Snapshotter) hasFile(pos uint64) bool {
	_, err := os.Stat(SnapshotPath(s.dir, pos))
	return err == nil
}

// SnapshotPath returns the path of the snapshot file at pos in dir.
func SnapshotPath(dir string, pos uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s%020d%s", snapPrefix, pos, snapSuffix))
}

// WriteSnapshotFile writes snap into dir as SnapshotPath(dir, position)
// atomically (temporary file, fsync, rename, directory fsync) and returns
// its size.
func WriteSnapshotFile(dir string, snap *Snapshot) (int64, error) {
	path := SnapshotPath(dir, snap.Position())
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, fmt.Errorf("create snapshot: %w", err)
	}
	n, err := WriteSnapshot(f, snap)
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return 0, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return 0, fmt.Errorf("sync snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("close snapshot: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("rename snapshot: %w", err)
	}
	return n, SyncDir(dir)
}

// SyncDir makes dir's entries durable, after a file is renamed or linked
// into it.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync snapshot dir: %w", err)
	}
	return nil
}

// prune removes all but the newest Keep snapshots and leftover temporary
// files.
func (s *Snapshotter) prune() error {
	positions, err := snapshotFiles(s.dir)
	if err != nil {
		return err
	}
	var errs []error
	for i, pos := range positions {
		if i >= s.opts.Keep {
			if err := os.Remove(SnapshotPath(s.dir, pos)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		if isTemp(e.Name()) {
			os.Remove(filepath.Join(s.dir, e.Name()))
		}
	}
	return errors.Join(errs...)
}

// SnapshotPositions returns the positions of the snapshot files in dir,
// oldest first. A missing directory has none.
func SnapshotPositions(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var positions []uint64
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, snapPrefix) || !strings.HasSuffix(name, snapSuffix) {
			continue
		}
		pos, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, snapPrefix), snapSuffix), 10, 64)
		if err != nil {
			continue
		}
		positions = append(positions, pos)
	}
	slices.Sort(positions)
	return positions, nil
}

// tmpSuffix ends the name of a snapshot file being written.
const tmpSuffix = ".tmp"

// isTemp reports whether name is that of a snapshot file being written
// (or left behind by a crash).
func isTemp(name string) bool {
	return strings.HasPrefix(name, snapPrefix) && strings.HasSuffix(name, snapSuffix+tmpSuffix)
}

// SnapshotWriting reports whether a snapshot file is being written in dir
// (WriteSnapshotFile's temporary file exists).
func SnapshotWriting(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if isTemp(e.Name()) {
			return true
		}
	}
	return false
}

// snapshotFiles returns the positions of the snapshot files in dir, newest
// first.
func snapshotFiles(dir string) ([]uint64, error) {
	positions, err := SnapshotPositions(dir)
	slices.Reverse(positions)
	return positions, err
}

// LoadNewest returns the graph restored from the newest valid snapshot in
// dir at a position no later than maxPos (the log's head: a snapshot past
// it belongs to a log that was lost or cut). A damaged snapshot is
// reported to logger and skipped for the next older one; with none usable,
// it returns a new, empty graph at position 0 (replay everything).
func LoadNewest(ctx context.Context, dir string, maxPos uint64, opts Options, logger *slog.Logger) (*Graph, error) {
	if logger == nil {
		logger = slog.Default()
	}
	positions, err := snapshotFiles(dir)
	if err != nil {
		return nil, err
	}
	for _, pos := range positions {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		path := SnapshotPath(dir, pos)
		if pos > maxPos {
			logger.Warn("snapshot beyond the log head, skipped", "file", path, "head", maxPos)
			continue
		}
		g, err := loadFile(path, opts)
		if err != nil {
			logger.Warn("snapshot unusable, skipped", "file", path, "err", err)
			continue
		}
		if g.Position() != pos {
			logger.Warn("snapshot position does not match its name, skipped", "file", path, "position", g.Position())
			continue
		}
		return g, nil
	}
	return New(opts), nil
}

func loadFile(path string, opts Options) (*Graph, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return LoadSnapshot(f, opts)
}
