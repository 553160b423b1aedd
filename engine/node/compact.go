package node

import (
	"context"
	"errors"
	"fmt"
	"runtime/metrics"
	"time"

	"github.com/twinlog/twinlog/projections/timetravel"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// Compaction policy: the node rebuilds its twin graph when the Go heap holds
// at least compactMinLive bytes of live objects and its in-use spans at
// least half as many bytes again of free slots, and either compactEvery has
// passed since the last rebuild or the live heap has grown by half since
// (a bulk load is rebuilt a few times as it grows, not every few seconds).
const (
	compactMinLive = 256 << 20
	compactEvery   = 10 * time.Minute
)

// CompactStats reports a rebuild of the twin graph.
type CompactStats struct {
	// Position is where the rebuilt graph took over.
	Position uint64
	// Rebuild is the time to write and load the snapshot, CatchUp the
	// time to apply the log written meanwhile, Pause how long the
	// applier waited for the swap.
	Rebuild, CatchUp, Pause time.Duration
}

// CompactGraph rebuilds the twin graph from a snapshot of itself, applies
// the log written meanwhile, and swaps the rebuilt state in between two
// batches (twingraph.Rebuild, twingraph.Graph.Adopt). What the graph holds
// does not change; how its values lie in memory does. A graph built by
// many small writes (an import through the API, months of patches) is
// spread over memory among their garbage, in more objects than a loaded
// one, and every garbage collection pays for it: on the standard graph of
// 1,011,000 twins loaded through the twin service, a collection costs
// about 5 s of CPU before and 1.2-1.4 s after. The node runs it on its own
// when the heap is fragmented (see Config.CompactCheck). While it runs, the
// node holds both graphs: about twice the graph's memory.
func (n *Node) CompactGraph(ctx context.Context) (CompactStats, error) {
	n.compacting.Lock()
	defer n.compacting.Unlock()
	var st CompactStats
	start := time.Now()
	c, err := twingraph.Rebuild(n.graph.Snapshot(), twingraph.Options{})
	if err != nil {
		return st, err
	}
	st.Rebuild = time.Since(start)
	start = time.Now()
	// Catch up without stopping the applier, then take the rest (what it
	// applied since) while it waits.
	for {
		applied := n.eng.Applied()
		if applied <= c.Position()+4096 {
			break
		}
		if err := timetravel.Replay(ctx, n.log, c, applied); err != nil {
			return st, err
		}
	}
	st.CatchUp = time.Since(start)
	err = n.eng.Exclusive(func(applied uint64) error {
		start := time.Now()
		defer func() { st.Pause = time.Since(start) }()
		if err := timetravel.Replay(ctx, n.log, c, applied); err != nil {
			return err
		}
		st.Position = applied
		return n.graph.Adopt(c)
	})
	if err != nil {
		return st, fmt.Errorf("compact twin graph: %w", err)
	}
	n.cfg.Logger.Info("twin graph rebuilt", "position", st.Position, "rebuild", st.Rebuild.Round(time.Millisecond),
		"catch_up", st.CatchUp.Round(time.Millisecond), "pause", st.Pause.Round(time.Microsecond))
	return st, nil
}

// heapStats returns the Go heap's live bytes and the free bytes in its
// in-use spans.
func heapStats() (live, unused uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return 0, 0
	}
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// compactDue reports whether the graph should be rebuilt now, given the
// heap's live and unused bytes, and the time and live bytes of the last
// rebuild (zero for none). See the compaction policy above.
func compactDue(live, unused uint64, now, last time.Time, lastLive uint64) bool {
	if live < compactMinLive || unused < live/2 {
		return false
	}
	return last.IsZero() || now.Sub(last) >= compactEvery || live >= lastLive+lastLive/2
}

// compactor checks the heap every interval and compacts the twin graph
// when it is due, until ctx ends.
func (n *Node) compactor(ctx context.Context, interval time.Duration) {
	defer close(n.compactDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	var last time.Time
	var lastLive uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		live, unused := heapStats()
		if !compactDue(live, unused, time.Now(), last, lastLive) {
			continue
		}
		last, lastLive = time.Now(), live
		if _, err := n.CompactGraph(ctx); err != nil && !errors.Is(err, context.Canceled) {
			n.cfg.Logger.Error("compact twin graph", "err", err)
		}
	}
}
