package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/authn"
	"github.com/twinlog/twinlog/engine/authz"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/filelog"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// state is what a node restores before its engine tails the log: the twin
// graph and the access-control projections, in the order the engine
// applies them. The other projections (handler deployments, devices,
// routes, telemetry history) are rebuilt by reading the log from its start
// every time a node opens.
type state struct {
	graph  *twingraph.Graph
	grants *authz.Store
	keys   *authn.Keys
}

func newState(graph *twingraph.Graph) *state {
	return &state{
		graph: graph,
		// Subtree scopes follow the twin graph's relationships (the graph
		// is applied before the grants in every batch).
		grants: authz.New(authz.Options{
			Models: func() authz.ModelChecker {
				if reg := graph.Snapshot().Models(); reg != nil {
					return reg
				}
				return nil
			},
			Outgoing: authz.GraphOutgoing(graph),
		}),
		keys: authn.NewKeys(),
	}
}

func (s *state) projections() []engine.Projection {
	return []engine.Projection{s.graph, s.grants, s.keys}
}

func (s *state) apply(batch []event.Event) error {
	for _, p := range s.projections() {
		if err := p.Apply(batch); err != nil {
			return fmt.Errorf("apply %T at %d..%d: %w", p, batch[0].Position, batch[len(batch)-1].Position, err)
		}
	}
	return nil
}

// restore builds the state a node starts from: the graph from the newest
// usable snapshot in snapDir at or before head, and the grants and API
// keys replayed from their own streams up to the snapshot's position. The
// engine applies the log after graph.Position().
func restore(ctx context.Context, lg eventlog.Log, snapDir string, head uint64, logger *slog.Logger) (*state, error) {
	graph, err := twingraph.LoadNewest(ctx, snapDir, head, twingraph.Options{}, logger)
	if err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	s := newState(graph)
	from := graph.Position()
	if err := s.grants.Replay(ctx, lg, from); err != nil {
		return nil, err
	}
	if err := s.keys.Replay(ctx, lg, from); err != nil {
		return nil, err
	}
	return s, nil
}

// VerifyOptions configures Verify. The zero value is valid.
type VerifyOptions struct {
	// Progress, when not nil, is called about once a second while the log
	// is replayed, and once at the end.
	Progress func(VerifyProgress)
	// MaxDifferences bounds the differences listed per comparison.
	// Default 10.
	MaxDifferences int
	// ReadBatch is how many events are read and applied at once. Default
	// 65,536: a twin patched several times within a batch is copied once
	// (the twin graph changes in place what its batch made).
	ReadBatch int
	// Logger receives reports of damaged snapshots met while restoring.
	// Default: discarded (they are reported as comparisons).
	Logger *slog.Logger
}

// VerifyProgress is how far a Verify replay has come.
type VerifyProgress struct {
	// Applied is the position replayed; Head the log's head.
	Applied, Head uint64
	// Elapsed is the time since the replay started.
	Elapsed time.Duration
}

// Rate returns the events replayed per second so far.
func (p VerifyProgress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Applied) / p.Elapsed.Seconds()
}

// Comparison is one check Verify made: a projection rebuilt from position
// 0 against the state a node would have had at the same position.
type Comparison struct {
	// Projection is "twin graph", "grants" or "api keys".
	Projection string `json:"projection"`
	// Against names the state compared with the rebuild: a snapshot file,
	// or the restored state (newest snapshot + log tail) at the head.
	Against string `json:"against"`
	// Position is the log position both states are at.
	Position uint64 `json:"position"`
	// Differences describe how Against differs from the rebuild, first
	// ones first, at most VerifyOptions.MaxDifferences; empty when equal.
	Differences []string `json:"differences,omitempty"`
	// More is set when there were more differences than listed.
	More bool `json:"more,omitempty"`
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	// Head is the log's head; Events the events replayed (Head).
	Head uint64 `json:"head"`
	// Restored is the position of the snapshot the live state started
	// from (0: none, the whole log was its tail).
	Restored    uint64        `json:"restored"`
	Took        time.Duration `json:"took"`
	Comparisons []Comparison  `json:"comparisons"`
}

// OK reports whether every comparison found the states equal.
func (r *VerifyReport) OK() bool {
	for _, c := range r.Comparisons {
		if len(c.Differences) > 0 {
			return false
		}
	}
	return true
}

// First returns the first comparison that found a difference.
func (r *VerifyReport) First() (Comparison, bool) {
	for _, c := range r.Comparisons {
		if len(c.Differences) > 0 {
			return c, true
		}
	}
	return Comparison{}, false
}

// ErrInUse is returned by Verify for a data directory whose log another
// process (a serving node) holds open.
var ErrInUse = errors.New("node: data directory in use")

// Verify replays the log of the data directory dataDir, which no node may
// be serving, from position 0 into new projections (the twin graph with
// its models, the grants and the API keys), and checks the result against
// what a node opening dataDir restores: the newest usable snapshot plus
// the log after it, compared at the head. On its way it also checks every
// snapshot and history checkpoint file against the rebuild at that file's
// position. A projection is deterministic, so every comparison must find
// the states equal, to the byte of what a snapshot records (positions,
// versions, update times and telemetry state included); the report lists
// what differs. Verify changes nothing in dataDir.
func Verify(ctx context.Context, dataDir string, opts VerifyOptions) (*VerifyReport, error) {
	if opts.MaxDifferences <= 0 {
		opts.MaxDifferences = 10
	}
	if opts.ReadBatch <= 0 {
		opts.ReadBatch = 1 << 16
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	logDir := filepath.Join(dataDir, "log")
	if _, err := os.Stat(logDir); err != nil {
		return nil, fmt.Errorf("no log in %s: %w", dataDir, err)
	}
	lg, err := filelog.Open(logDir, filelog.Options{Logger: opts.Logger})
	if err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is open in another process (stop the node first): %w", ErrInUse, logDir, err)
		}
		return nil, fmt.Errorf("open log: %w", err)
	}
	defer lg.Close()
	start := time.Now()
	head, err := lg.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("read log head: %w", err)
	}
	snapDir := filepath.Join(dataDir, "snapshots")
	live, err := restore(ctx, lg, snapDir, head, opts.Logger)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{Head: head, Restored: live.graph.Position()}

	// The positions to stop at: every snapshot file, and the live state's.
	files := map[uint64][]string{}
	for _, dir := range []string{snapDir, filepath.Join(dataDir, "history")} {
		ps, err := twingraph.SnapshotPositions(dir)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			if p <= head {
				files[p] = append(files[p], twingraph.SnapshotPath(dir, p))
			}
		}
	}
	stops := []uint64{rep.Restored}
	for p := range files {
		stops = append(stops, p)
	}
	slices.Sort(stops)
	stops = slices.Compact(stops)

	rebuilt := newState(twingraph.New(twingraph.Options{}))
	report := func(applied uint64) {
		if opts.Progress != nil {
			opts.Progress(VerifyProgress{Applied: applied, Head: head, Elapsed: time.Since(start)})
		}
	}
	lastReport := time.Now()
	check := func(pos uint64) {
		for _, path := range files[pos] {
			rep.Comparisons = append(rep.Comparisons, compareFile(path, pos, rebuilt.graph.Snapshot(), opts.MaxDifferences))
		}
	}
	check(0)
	for pos := uint64(1); pos <= head; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(uint64(opts.ReadBatch), head-pos+1)
		if i, _ := slices.BinarySearch(stops, pos); i < len(stops) {
			n = min(n, stops[i]-pos+1)
		}
		evs, err := lg.Read(ctx, pos, int(n))
		if err != nil {
			return nil, fmt.Errorf("read log at %d: %w", pos, err)
		}
		if len(evs) == 0 || evs[0].Position != pos {
			return nil, fmt.Errorf("read log at %d: %w", pos, eventlog.ErrOutOfRange)
		}
		if uint64(len(evs)) > n {
			evs = evs[:n]
		}
		if err := rebuilt.apply(evs); err != nil {
			return nil, fmt.Errorf("rebuild: %w", err)
		}
		if pos > rep.Restored {
			if err := live.apply(evs); err != nil {
				return nil, fmt.Errorf("apply the log after the snapshot at %d: %w", rep.Restored, err)
			}
		}
		pos = evs[len(evs)-1].Position + 1
		check(pos - 1)
		if time.Since(lastReport) >= time.Second {
			lastReport = time.Now()
			report(pos - 1)
		}
	}
	report(head)

	against := fmt.Sprintf("snapshot at %d + log tail", rep.Restored)
	if rep.Restored == 0 {
		against = "the log replayed as a node opens it"
	}
	c := Comparison{Projection: "twin graph", Against: against, Position: head}
	twingraph.Diff(rebuilt.graph.Snapshot(), live.graph.Snapshot(), twingraph.DiffOptions{Exact: true}, c.add(opts.MaxDifferences))
	rep.Comparisons = append(rep.Comparisons, c)
	rep.Comparisons = append(rep.Comparisons,
		compareLists("grants", against, head, rebuilt.grants.Grants(), live.grants.Grants(), func(g authz.Grant) string { return g.ID }, opts.MaxDifferences),
		compareLists("api keys", against, head, rebuilt.keys.List(), live.keys.List(), func(k authn.KeyInfo) string { return k.ID }, opts.MaxDifferences))
	rep.Took = time.Since(start)
	return rep, nil
}

// add returns a twingraph.Diff callback collecting up to max differences.
func (c *Comparison) add(max int) func(twingraph.Difference) bool {
	return func(d twingraph.Difference) bool {
		if len(c.Differences) == max {
			c.More = true
			return false
		}
		c.Differences = append(c.Differences, d.String())
		return true
	}
}

func compareFile(path string, pos uint64, rebuilt *twingraph.Snapshot, max int) Comparison {
	c := Comparison{Projection: "twin graph", Against: path, Position: pos}
	f, err := os.Open(path)
	if err != nil {
		c.Differences = []string{"unreadable: " + err.Error()}
		return c
	}
	defer f.Close()
	g, err := twingraph.LoadSnapshot(f, twingraph.Options{})
	if err != nil {
		c.Differences = []string{"unusable: " + err.Error()}
		return c
	}
	twingraph.Diff(rebuilt, g.Snapshot(), twingraph.DiffOptions{Exact: true}, c.add(max))
	return c
}

// compareLists compares two lists ordered by id, item by item as JSON.
func compareLists[T any](projection, against string, pos uint64, rebuilt, live []T, id func(T) string, max int) Comparison {
	c := Comparison{Projection: projection, Against: against, Position: pos}
	add := c.add(max)
	js := func(v T) string { b, _ := json.Marshal(v); return string(b) }
	i, j := 0, 0
	for i < len(rebuilt) || j < len(live) {
		var d twingraph.Difference
		switch {
		case j == len(live) || (i < len(rebuilt) && id(rebuilt[i]) < id(live[j])):
			d = twingraph.Difference{Kind: twingraph.Removed, What: projection, Name: id(rebuilt[i]), A: js(rebuilt[i])}
			i++
		case i == len(rebuilt) || id(live[j]) < id(rebuilt[i]):
			d = twingraph.Difference{Kind: twingraph.Added, What: projection, Name: id(live[j]), B: js(live[j])}
			j++
		default:
			a, b := js(rebuilt[i]), js(live[j])
			i, j = i+1, j+1
			if a == b {
				continue
			}
			d = twingraph.Difference{Kind: twingraph.Changed, What: projection, Name: id(rebuilt[i-1]), A: a, B: b}
		}
		if !add(d) {
			break
		}
	}
	return c
}
