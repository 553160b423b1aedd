package twins

import (
	"context"
	"hash/maphash"
	"sync"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// A combiner executes concurrent writes to distinct twins as one engine
// command: one decision against one snapshot, one append (one durable
// write, one expectation per twin) and one wait for the projections. It
// amortizes the per-command costs (log lock hand-offs, wake-ups, memdb
// transactions) that otherwise bound the write rate far below the CPU's.
//
// Semantics are those of separate commands: each member decides against
// state at least as new as when it was submitted, a member's validation
// error fails only that member, and on a conflict the engine re-decides
// every member against newer state. A batch holds at most one write per
// twin, so no member decides on state another member of its batch changes.
//
// There is no background goroutine: the first caller to find the combiner
// idle leads, executing batches until its own write is done, then hands the
// lead to the oldest waiting caller.
//
// Each caller first decides its write itself, against the newest snapshot,
// in parallel with the leader and the projections. A refusal (not found,
// invalid, precondition failed) or a write that changes nothing is answered
// there and then: the snapshot holds every write acknowledged before the
// call. Otherwise the leader uses that decision unless the combiner has
// written the twin since the caller's snapshot, in which case it decides
// again; a write from elsewhere in between is caught by the decision's
// expectation on the twin's stream, and the engine then decides the whole
// batch again against newer state. The leader's serial work per write is
// then a table lookup and an append, not a decision.
type combiner struct {
	eng *engine.Engine
	g   *twingraph.Graph
	max int

	mu struct {
		sync.Mutex
		queue   []*write
		leading bool
	}
	// written holds, per hash slot of a stream, the newest position the
	// combiner appended to a stream of that slot. Only the leader uses it.
	written [1 << 14]uint64
}

// write is one member of a combined command: a JSON Patch of one twin
// (see Service.patch and write.decide). Writes are recycled (getWrite,
// putWrite) with their own group's channel.
type write struct {
	svc       *Service
	actor     string
	id        string
	component string
	ops       []Op
	cond      Cond

	stream string
	// ev is the event of the latest decision; etagPos is the ETag
	// position of the twin it decided on.
	ev      event.Event
	etagPos uint64

	// preEv and preExp are the caller's own decision, against the
	// snapshot at prePos.
	preEv  *event.Event
	preExp eventlog.Expect
	prePos uint64

	cause Cause  // recorded in its event (see WithCause)
	idx   int    // index of its event in the batch, -1 for none
	pos   uint64 // position of its event once appended
	err   error
	// grp is the group of writes the write was submitted with: own for
	// a write submitted alone (do), or the group of submit's caller.
	grp *group
	own group
}

// group is writes submitted together by one caller. The leader signals
// the caller on the group's channel once per write it executes (false)
// and when it hands the caller the lead (true).
type group struct {
	signal    chan bool
	remaining int // writes not yet done; only the caller touches it
}

var writePool = sync.Pool{New: func() any {
	w := &write{}
	w.own.signal = make(chan bool, 1)
	return w
}}

func getWrite() *write { return writePool.Get().(*write) }

// putWrite recycles w once its caller is done with it: by then no leader
// refers to it (a leader signals a member last).
func putWrite(w *write) {
	*w = write{own: group{signal: w.own.signal}}
	writePool.Put(w)
}

// do submits w alone and returns once it is executed (or failed).
func (c *combiner) do(ctx context.Context, w *write) { c.submit(ctx, &w.own, w) }

// submit submits ws as group g and returns once every one is executed (or
// failed). Each is decided first by the caller, against one snapshot; those
// that need executing are queued together, in order, so writes of ws to one
// twin are carried out in turn.
func (c *combiner) submit(ctx context.Context, g *group, ws ...*write) {
	snap := c.g.Snapshot()
	cause, _ := causeOf(ctx)
	g.remaining = 0
	for _, w := range ws {
		var err error
		if w.preEv, w.preExp, err = w.decide(snap); err != nil || w.preEv == nil {
			w.err, w.idx = err, -1
			continue
		}
		w.prePos = snap.Position()
		if w.cause == (Cause{}) {
			w.cause = cause
		}
		w.grp = g
		g.remaining++
	}
	if g.remaining == 0 {
		return
	}
	if cap(g.signal) < g.remaining {
		g.signal = make(chan bool, g.remaining)
	}
	c.mu.Lock()
	for _, w := range ws {
		if w.grp == g {
			c.mu.queue = append(c.mu.queue, w)
		}
	}
	lead := !c.mu.leading
	c.mu.leading = true
	c.mu.Unlock()
	for {
		if lead {
			c.lead(ctx, g) // returns once every write of g is done
			return
		}
		// A waiting write is not abandoned when ctx ends: it may
		// already be in an executing batch, and it may be handed the
		// lead. Its fields are the leader's until the signal.
		if lead = <-g.signal; !lead {
			if g.remaining--; g.remaining == 0 {
				return
			}
		}
	}
}

// lead executes batches until every write of own is done, then passes the
// lead on or goes idle.
func (c *combiner) lead(ctx context.Context, own *group) {
	ctx = context.WithoutCancel(ctx)
	for {
		c.mu.Lock()
		batch := c.take()
		c.mu.Unlock()
		c.execute(ctx, batch)
		for _, w := range batch {
			if w.grp == own {
				own.remaining--
			} else {
				w.grp.signal <- false
			}
		}
		if own.remaining > 0 {
			continue
		}
		c.mu.Lock()
		if len(c.mu.queue) == 0 {
			c.mu.leading = false
			c.mu.Unlock()
			return
		}
		next := c.mu.queue[0]
		c.mu.Unlock()
		next.grp.signal <- true
		return
	}
}

// take removes up to max writes to distinct streams from the queue, oldest
// first. c.mu must be held.
func (c *combiner) take() []*write {
	q := c.mu.queue
	batch := make([]*write, 0, min(len(q), c.max))
	seen := make(map[string]struct{}, min(len(q), c.max))
	rest := q[:0]
	for _, w := range q {
		if _, dup := seen[w.stream]; dup || len(batch) == c.max {
			rest = append(rest, w)
			continue
		}
		seen[w.stream] = struct{}{}
		batch = append(batch, w)
	}
	clear(q[len(rest):])
	c.mu.queue = rest
	return batch
}

// slotSeed seeds the hash that picks a stream's slot in c.written.
var slotSeed = maphash.MakeSeed()

// slot returns the index in c.written of a stream.
func slot(stream string) int {
	return int(maphash.String(slotSeed, stream) & (1<<14 - 1))
}

func (c *combiner) execute(ctx context.Context, batch []*write) {
	first := true
	res, err := c.eng.Execute(ctx, engine.CommandFunc(func(ctx context.Context) (engine.Decision, error) {
		// After a conflict, every member decides again against newer
		// state.
		fresh := first
		first = false
		var snap *twingraph.Snapshot
		d := engine.Decision{Events: make([]event.Event, 0, len(batch)), Expect: make([]eventlog.Expect, 0, len(batch))}
		for _, w := range batch {
			var ev *event.Event
			var exp eventlog.Expect
			var err error
			if fresh && c.written[slot(w.stream)] <= w.prePos {
				ev, exp = w.preEv, w.preExp
			} else {
				if snap == nil {
					snap = c.g.Snapshot()
				}
				ev, exp, err = w.decide(snap)
			}
			w.idx, w.err = -1, err
			if err != nil || ev == nil {
				continue
			}
			w.idx = len(d.Events)
			d.Events = append(d.Events, *ev)
			w.cause.stamp(&d.Events[w.idx])
			d.Expect = append(d.Expect, exp)
		}
		return d, nil
	}))
	for _, w := range batch {
		switch {
		case err != nil && w.err == nil:
			w.err = engine.AsError(err)
		case w.idx >= 0:
			w.pos = res.Appended.First + uint64(w.idx)
			c.written[slot(w.stream)] = w.pos
		}
	}
}
