package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/filelog"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/handlers"
	"github.com/twinlog/twinlog/projections/timetravel"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// replayCorrelation marks the copies a replay appends to a branch; their
// CausationID is the recorded event's id (its main log position).
const replayCorrelation = "replay"

const metaFile = "branch.json"

// meta describes a branch kept on disk: what Create was asked and decided,
// enough to fork the same graph again and replay its overlay onto it.
type meta struct {
	ID      string    `json:"id"`
	Fork    uint64    `json:"fork"`
	AtPos   uint64    `json:"atPosition,omitempty"`
	AtTime  time.Time `json:"atTime,omitzero"`
	Speed   float64   `json:"speed"`
	From    uint64    `json:"from"`
	To      uint64    `json:"to"`
	Created time.Time `json:"created"`
	// Origin is the branch's time at the fork, Unix ns (0: wall clock).
	Origin int64 `json:"origin"`
	// Fed counts the synthetic events fed at creation.
	Fed int `json:"fed"`
}

func (b *Branch) meta(origin int64, fed int) meta {
	return meta{ID: b.id, Fork: b.fork, AtPos: b.at.Position, AtTime: b.at.Time, Speed: b.speed, From: b.from, To: b.to,
		Created: b.created, Origin: origin, Fed: fed}
}

// writeMeta writes m into dir durably: a temporary file, synced, renamed
// over the description, and the directory synced.
func writeMeta(dir string, m meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, metaFile+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, metaFile))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("describe branch %s: %w", m.ID, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// openOverlay opens (creating it) the file log of a branch kept in dir,
// stamping appends with now.
func openOverlay(dir string, now func() time.Time, logger *slog.Logger) (eventlog.Log, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l, err := filelog.Open(filepath.Join(dir, "log"), filelog.Options{Now: now, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("open branch log in %s: %w", dir, err)
	}
	return l, nil
}

// forkGraph returns a graph of its own holding the main graph as of fork.
func (s *Simulator) forkGraph(ctx context.Context, fork uint64) (*twingraph.Graph, error) {
	snap, err := s.tt.Position(ctx, fork)
	if err != nil {
		return nil, fmt.Errorf("build graph at %d: %w", fork, err)
	}
	// The branch's writes copy what they change: the traveler's cached
	// graph, and the main graph, never see them.
	return snap.Fork(), nil
}

// discard removes a stopped branch's files, if it has any.
func (b *Branch) discard() error {
	if b.dir == "" {
		return nil
	}
	if err := os.RemoveAll(b.dir); err != nil {
		return fmt.Errorf("remove branch %s: %w", b.id, err)
	}
	return nil
}

// Restore brings back the branches kept in Options.Dir by an earlier
// process: each forks the same graph again, replays its overlay onto it,
// restarts the handlers deployed in it (from their cursors), and resumes
// its replay after the last event it had copied. A branch directory
// without a description (a Create that did not finish) is removed. It
// returns the number of branches restored.
func (s *Simulator) Restore(ctx context.Context) (int, error) {
	if s.opts.Dir == "" {
		return 0, nil
	}
	ents, err := os.ReadDir(s.opts.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ent := range ents {
		if !ent.IsDir() {
			continue
		}
		dir := filepath.Join(s.opts.Dir, ent.Name())
		raw, err := os.ReadFile(filepath.Join(dir, metaFile))
		if errors.Is(err, os.ErrNotExist) {
			s.opts.Logger.Warn("removing an unfinished simulation branch", "dir", dir)
			if err := os.RemoveAll(dir); err != nil {
				return n, err
			}
			continue
		}
		if err != nil {
			return n, err
		}
		var m meta
		if err := json.Unmarshal(raw, &m); err != nil || m.ID != ent.Name() {
			return n, fmt.Errorf("simulation branch %s: bad %s: %v", ent.Name(), metaFile, err)
		}
		b, err := s.restore(ctx, dir, m)
		if err != nil {
			return n, fmt.Errorf("restore simulation branch %s: %w", m.ID, err)
		}
		s.mu.Lock()
		s.mu.branches[m.ID] = b
		if k, err := strconv.ParseUint(strings.TrimPrefix(m.ID, "sim-"), 10, 64); err == nil && k > s.mu.next {
			s.mu.next = k
		}
		s.mu.Unlock()
		n++
	}
	return n, nil
}

// restore rebuilds one branch kept in dir and starts what is left of its
// replay.
func (s *Simulator) restore(ctx context.Context, dir string, m meta) (*Branch, error) {
	g, err := s.forkGraph(ctx, m.Fork)
	if err != nil {
		return nil, err
	}
	b := &Branch{id: m.ID, fork: m.Fork, at: timetravel.At{Position: m.AtPos, Time: m.AtTime}, speed: m.Speed,
		from: m.From, to: m.To, created: m.Created, dir: dir, done: make(chan struct{})}
	b.clock.Store(m.Origin)
	b.fed.Store(uint64(m.Fed))
	overlay, err := openOverlay(dir, b.now, s.opts.Logger)
	if err != nil {
		return nil, err
	}
	b.log = NewOffsetLog(overlay, m.Fork)

	// What the overlay holds: the branch's time, the last copy the replay
	// made, whether handlers were deployed in it.
	var last, copied uint64
	var lastTime, copyTime int64
	var withHandlers bool
	for pos := m.Fork + 1; ; {
		evs, err := b.log.Read(ctx, pos, 4096)
		if err != nil {
			b.log.Close()
			return nil, err
		}
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			e := &evs[i]
			last, lastTime = e.Position, e.Time
			withHandlers = withHandlers || e.Stream == handlers.Stream
			if e.CorrelationID != replayCorrelation {
				continue
			}
			if p, err := strconv.ParseUint(e.CausationID, 10, 64); err == nil {
				copied, copyTime = p, e.Time
				n := uint64(1)
				if e.Type == twingraph.TypeTelemetryBatch {
					if k, err := twingraph.TelemetryBatchPoints(e.Payload); err == nil {
						n = uint64(k)
					}
				}
				b.fed.Add(n)
			}
		}
		pos = evs[len(evs)-1].Position + 1
	}
	if last > 0 && m.Origin != 0 {
		b.clock.Store(max(m.Origin, lastTime))
	}
	if copied > 0 {
		// Resume after the last copy, shifting times as before: its
		// branch time minus its recorded time.
		evs, err := s.log.Read(ctx, copied, 1)
		if err != nil || len(evs) == 0 || evs[0].Position != copied {
			b.log.Close()
			return nil, fmt.Errorf("read recorded event %d: %v", copied, err)
		}
		b.from, b.shift, b.haveShift = copied+1, max(0, copyTime-evs[0].Time), true
	}

	if b.eng, err = engine.New(b.log, engine.Options{From: m.Fork, Logger: s.opts.Logger}, g); err != nil {
		b.log.Close()
		return nil, err
	}
	if err := b.eng.Start(ctx, nil); err != nil {
		b.log.Close()
		return nil, fmt.Errorf("replay the branch's log: %w", err)
	}
	b.graph = g
	b.twins = twins.New(b.eng, g, twins.Options{})
	if withHandlers {
		// The manager finds its deployments and cursors in the overlay.
		if err := b.startHandlers(ctx, s, "", nil); err != nil {
			b.shut()
			return nil, err
		}
	}
	rctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	go b.replay(rctx, s.log, s.opts.ReadBatch, s.opts.TimeResolution)
	return b, nil
}
