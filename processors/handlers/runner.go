package handlers

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/authz"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/wasm-handlers/abi"
	"github.com/twinlog/twinlog/wasm-handlers/host"
)

// version is one deployed version of a handler.
type version struct {
	pos      uint64
	time     time.Time
	manifest Manifest
	module   []byte
	sha      string

	mu  sync.Mutex
	mod *host.Module // compiled on first use after a restart
	// native, when set, runs instead of the module: the same logic in Go,
	// for benchmarks that compare the two.
	native invoker
}

// invoker runs a handler over one batch of events (see host.Module.Invoke).
type invoker interface {
	Invoke(ctx context.Context, state host.State, batch []abi.Event, input []byte) (*host.Result, error)
}

func (v *version) compiled(ctx context.Context, h *host.Host) (invoker, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.native != nil {
		return v.native, nil
	}
	if v.mod == nil {
		mod, err := h.Compile(ctx, v.manifest.Name, v.module, v.manifest.Limits.host(), v.manifest.Config)
		if err != nil {
			return nil, err
		}
		v.mod = mod
	}
	return v.mod, nil
}

// entry is one change of what a handler does from position pos on: run v,
// or, with v nil, nothing (disabled).
type entry struct {
	pos uint64
	v   *version
}

// runner runs one handler.
type runner struct {
	m    *Manager
	name string
	seq  int
	from uint64 // position of the first deployment
	// principal is who the handler acts as, where access control is on.
	principal authz.Principal

	entriesMu sync.Mutex
	entries   []entry

	handler *message.Handler
	topic   string
	cancel  context.CancelFunc
	done    chan struct{}
	cursor  atomic.Uint64 // every event up to it was handled

	// seen are outputs (cause.seq) and dead letters ("d" + position) found
	// in the log after the checkpoint at start, skipped when re-handled.
	seen     map[string]struct{}
	seenUpTo uint64
	// partial is the telemetry.batch a full job ended inside (see
	// takePoints), owned by the feeder.
	partial batchCursor

	stats stats
}

type stats struct {
	events, batches, invocations, failures, retries, deadLetters atomic.Uint64
	outputs, outputErrors, cascadeStops, deduplicated            atomic.Uint64
	hidden, denied                                               atomic.Uint64

	mu struct {
		sync.Mutex
		latencies []time.Duration // ring of recent invocation times
		next      int
		reports   []Report
		dead      []DeadLetter
		metrics   map[string]float64
	}
}

// Report is one problem a handler ran into.
type Report struct {
	Time     time.Time `json:"time"`
	Position uint64    `json:"position,omitempty"`
	Kind     string    `json:"kind"`
	Message  string    `json:"message"`
}

const maxReports = 32

func (s *stats) report(r Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mu.reports) == maxReports {
		copy(s.mu.reports, s.mu.reports[1:])
		s.mu.reports = s.mu.reports[:maxReports-1]
	}
	s.mu.reports = append(s.mu.reports, r)
}

func (s *stats) latency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mu.latencies) < 1024 {
		s.mu.latencies = append(s.mu.latencies, d)
		return
	}
	s.mu.latencies[s.mu.next] = d
	s.mu.next = (s.mu.next + 1) % len(s.mu.latencies)
}

func newRunner(m *Manager, name string, seq int, from uint64) *runner {
	return &runner{m: m, name: name, seq: seq, from: from, done: make(chan struct{}),
		principal: authz.Principal{Subject: authz.HandlerPrincipal(name)}}
}

// may reports whether the handler may do a on twin id of model; always
// where access control is off.
func (r *runner) may(a authz.Action, id, model string) bool {
	return r.m.opts.Grants == nil || r.m.opts.Grants.Allowed(&r.principal, a, id, model)
}

// state returns what one invocation reads: snap, as far as the handler
// may read it.
func (r *runner) state(snap *twingraph.Snapshot) snapState {
	st := snapState{snap: snap}
	if r.m.opts.Grants != nil {
		st.visible = r.m.opts.Grants.Visible(&r.principal)
	}
	return st
}

func (r *runner) addEntry(e entry) {
	r.entriesMu.Lock()
	defer r.entriesMu.Unlock()
	r.entries = append(r.entries, e)
}

// at returns the version handling the event at pos, nil when none.
func (r *runner) at(pos uint64) *version {
	r.entriesMu.Lock()
	defer r.entriesMu.Unlock()
	var v *version
	for _, e := range r.entries {
		if e.pos >= pos {
			break
		}
		v = e.v
	}
	return v
}

func (r *runner) current() (*version, bool) {
	r.entriesMu.Lock()
	defer r.entriesMu.Unlock()
	var last *version
	for _, e := range slices.Backward(r.entries) {
		if e.v != nil {
			last = e.v
			break
		}
	}
	return last, len(r.entries) > 0 && r.entries[len(r.entries)-1].v != nil
}

func (r *runner) closeModules() {
	r.entriesMu.Lock()
	defer r.entriesMu.Unlock()
	for _, e := range r.entries {
		if e.v != nil {
			e.v.mu.Lock()
			if e.v.mod != nil {
				e.v.mod.Close(context.Background())
				e.v.mod = nil
			}
			e.v.mu.Unlock()
		}
	}
}

// start reads the cursor, scans the log after it for this handler's
// outputs, and starts the feeder.
func (r *runner) start(ctx context.Context) error {
	log := r.m.log
	cur := r.from
	if v, err := log.StreamVersion(ctx, CursorStream(r.name)); err != nil {
		return fmt.Errorf("read cursor of %s: %w", r.name, err)
	} else if v != 0 {
		evs, err := log.Read(ctx, v, 1)
		if err != nil || len(evs) == 0 {
			return fmt.Errorf("read cursor of %s: %v", r.name, err)
		}
		var cp Checkpoint
		if err := decode(&evs[0], &cp); err != nil {
			return err
		}
		cur = max(cur, cp.Position)
	}
	r.cursor.Store(cur)
	head, err := log.Head(ctx)
	if err != nil {
		return err
	}
	prefix := actorPrefix + r.name + "@"
	for from := cur + 1; from <= head; {
		evs, err := log.Read(ctx, from, 4096)
		if err != nil {
			return fmt.Errorf("scan for outputs of %s: %w", r.name, err)
		}
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			e := &evs[i]
			switch {
			case strings.HasPrefix(e.Actor, prefix):
				for _, o := range parseActor(e.Actor).outputs {
					r.markSeen(o.key())
				}
			case e.Type == TypeDeadLettered && e.Stream == DeadLetterStream(r.name):
				var d DeadLetter
				if decode(e, &d) == nil {
					r.markSeen(fmt.Sprintf("d%d", d.Position))
				}
			}
		}
		from = evs[len(evs)-1].Position + 1
	}
	r.seenUpTo = head
	fctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.feed(fctx)
	return nil
}

func (r *runner) markSeen(k string) {
	if r.seen == nil {
		r.seen = map[string]struct{}{}
	}
	r.seen[k] = struct{}{}
}

func (r *runner) stopped() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// stop ends the feeder after the batch in flight and checkpoints.
func (r *runner) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	if r.handler != nil {
		r.handler.Stop()
	}
}

// job is one batch for the guest, carried in the message's context.
type job struct {
	// ctx ends when the handler stops.
	ctx    context.Context
	v      *version
	events []*event.Event
	abi    []abi.Event
	input  []byte
	snap   *twingraph.Snapshot
	// applied are outputs already applied by an earlier attempt.
	applied map[string]struct{}
	// point, when not nil, is each event's point index within its
	// telemetry.batch (0 for other events); see batch.go.
	point []int
	// seen is the runner's seen as the feeder made the job: outputs
	// already in the log, skipped.
	seen map[string]struct{}
	// through is the position up to which every event is handled once
	// the job is.
	through uint64
}

type jobKey struct{}

// feedBatch is the most events the feeder reads at once.
const feedBatch = 1024

// feed tails the log and publishes the matching events batch by batch. It
// waits for the engine to apply events, not for the log to grow: handlers
// read the graph as of their batch, so an event appended but not yet
// applied could not be handled anyway, and the feeder wakes once per
// applied batch instead of once at the append and again at the apply.
//
// A batch is published (and so handled) on a goroutine of its own while
// the feeder reads and prepares the next one, which it hands over when the
// previous one is handled: decoding the log and looking up twins overlap
// the guest's run and its writes. The cursor advances on the publishing
// goroutine, in log order, as each batch is handled.
func (r *runner) feed(ctx context.Context) {
	steps := make(chan feedStep)
	published := make(chan struct{})
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		defer close(published)
		r.publish(ctx, stop, steps)
	}()
	defer close(r.done)
	defer r.checkpoint(context.Background())
	defer func() {
		close(steps)
		<-published
	}()
	// send hands s to the publisher; false when the feeder is to stop.
	send := func(s feedStep) bool {
		select {
		case steps <- s:
			return true
		case <-fctx.Done():
			return false
		}
	}
	var lastCheckpoint time.Time
	for next := r.cursor.Load() + 1; ; {
		evs, err := r.read(fctx, next)
		if err != nil {
			if fctx.Err() == nil {
				r.stats.report(Report{Time: time.Now(), Kind: "stopped", Message: err.Error()})
				r.m.opts.Logger.Error("handler feeder stopped", "handler", r.name, "err", err)
			}
			return
		}
		last := evs[len(evs)-1].Position
		next = last + 1
		snap := r.m.graph.Snapshot()
		handled := false
		for len(evs) > 0 {
			j, rest := r.nextJob(evs, snap)
			evs = rest
			if j == nil {
				continue
			}
			handled = true
			j.ctx = ctx
			if !send(feedStep{job: j}) {
				return
			}
		}
		if !send(feedStep{through: last}) {
			return
		}
		if last > r.seenUpTo {
			r.seen = nil
		}
		if handled && time.Since(lastCheckpoint) >= r.m.opts.CheckpointInterval {
			r.checkpoint(fctx)
			lastCheckpoint = time.Now()
		}
	}
}

// feedStep is what the feeder hands the publisher: a job to publish, after
// which the cursor moves to its through, or, with job nil, only a move of
// the cursor to through (past events no job took).
type feedStep struct {
	job     *job
	through uint64
}

// publish publishes the feeder's jobs in order, each once the one before
// is handled, and moves the cursor past each. When a publish fails or ctx
// ends, it stops the feeder and moves the cursor no further; it returns
// when the feeder has closed steps.
func (r *runner) publish(ctx context.Context, stopFeeder context.CancelFunc, steps <-chan feedStep) {
	failed := false
	for s := range steps {
		if failed {
			continue
		}
		if j := s.job; j != nil {
			msg := message.NewMessage(watermill.NewUUID(), nil)
			// The message's own context is never cancelled: watermill's
			// Retry middleware answers a cancelled one with an error
			// before calling the handler, the message is then redelivered
			// at once, and this publish, waiting for its ack, never
			// returns. The handler watches the feeder's context in j.
			msg.SetContext(context.WithValue(context.WithoutCancel(ctx), jobKey{}, j))
			if err := r.m.pubsub.Publish(r.topic, msg); err != nil {
				if ctx.Err() == nil {
					r.stats.report(Report{Time: time.Now(), Kind: "stopped", Message: err.Error()})
				}
				failed = true
				stopFeeder()
				continue
			}
			s.through = j.through
		}
		if ctx.Err() != nil {
			// The batch may not have been handled; it is handled again
			// after a restart.
			failed = true
			stopFeeder()
			continue
		}
		r.cursor.Store(s.through)
	}
}

// read returns the next events from position next on, once the engine has
// applied at least one.
func (r *runner) read(ctx context.Context, next uint64) ([]event.Event, error) {
	if err := r.m.eng.WaitApplied(ctx, next); err != nil {
		return nil, err
	}
	applied := r.m.eng.Applied()
	evs, err := r.m.log.Read(ctx, next, int(min(applied-next+1, feedBatch)))
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	if len(evs) == 0 {
		return nil, fmt.Errorf("read log: no event at %d, though the engine applied up to %d", next, applied)
	}
	return evs, nil
}

func (r *runner) checkpoint(ctx context.Context) {
	pos := r.cursor.Load()
	ev, err := newEvent(CursorStream(r.name), TypeCheckpoint, "system", Checkpoint{Name: r.name, Position: pos})
	if err != nil {
		return
	}
	// A checkpoint cut short by the handler stopping is not a problem: the
	// last one is written as it stops.
	if _, err := r.m.log.Append(ctx, []event.Event{ev}); err != nil && !errors.Is(err, eventlog.ErrClosed) && ctx.Err() == nil {
		r.m.opts.Logger.Warn("checkpoint handler cursor", "handler", r.name, "err", err)
	}
}

// nextJob takes the longest prefix of evs handled by one version, at most
// MaxBatch events, and returns the job of its matching events (nil when
// none) and the rest.
func (r *runner) nextJob(evs []event.Event, snap *twingraph.Snapshot) (*job, []event.Event) {
	v := r.at(evs[0].Position)
	n := 1
	for n < len(evs) && r.at(evs[n].Position) == v {
		n++
	}
	if v == nil {
		return nil, evs[n:]
	}
	max := v.manifest.Limits.host().MaxBatch
	n = min(n, max)
	j := &job{v: v, snap: snap, seen: r.seen}
	for i := range evs[:n] {
		e := &evs[i]
		if e.Type == twingraph.TypeTelemetryBatch {
			if !v.manifest.selects(twingraph.TypeTelemetry) {
				continue
			}
			if !r.takePoints(j, e, max) {
				// j is full: the rest of e's points start the next job.
				j.through = e.Position - 1
				n = i
				break
			}
			continue
		}
		if len(j.events) == max {
			n = i
			break
		}
		if !v.manifest.selects(e.Type) {
			continue // not worth describing
		}
		if r.seen != nil {
			if _, ok := r.seen[fmt.Sprintf("d%d", e.Position)]; ok {
				continue
			}
		}
		if a, ok := describe(e, snap); ok {
			r.take(j, e, a, 0)
		}
	}
	if len(j.events) == 0 {
		return nil, evs[n:]
	}
	if j.through == 0 {
		j.through = j.events[len(j.events)-1].Position
	}
	size := abi.BatchHeaderSize
	for i := range j.abi {
		size += abi.EventSize(&j.abi[i])
	}
	j.input = abi.AppendBatchHeader(make([]byte, 0, size), len(j.abi))
	for i := range j.abi {
		j.input = abi.AppendEvent(j.input, &j.abi[i])
	}
	r.stats.events.Add(uint64(len(j.events)))
	return j, evs[n:]
}

// take adds the event a (of log event e, point point of a telemetry.batch)
// to j when the handler's triggers select it and the handler may read its
// twin.
func (r *runner) take(j *job, e *event.Event, a abi.Event, point int) {
	v, reg := j.v, j.snap.Models()
	matched := false
	for t := range v.manifest.Triggers {
		if v.manifest.Triggers[t].match(reg, a.Type, a.Model, a.Changed, a.Relationship) {
			matched = true
			break
		}
	}
	if !matched {
		return
	}
	if !r.may(authz.ActRead, a.Twin, a.Model) {
		r.stats.hidden.Add(1) // events of twins the handler may not read do not reach it
		return
	}
	a.Hop = uint32(parseActor(e.Actor).hop)
	j.events = append(j.events, e)
	j.abi = append(j.abi, a)
	if point > 0 && j.point == nil {
		j.point = make([]int, len(j.events)-1, cap(j.events))
	}
	if j.point != nil {
		j.point = append(j.point, point)
	}
}

var bodyKey = []byte(`"body":`)

// describe returns the ABI view of a twin event; ok is false for events
// handlers never see.
func describe(e *event.Event, snap *twingraph.Snapshot) (abi.Event, bool) {
	a := abi.Event{Position: e.Position, Time: e.Time, Seed: abi.Seed(e.Position), Kind: abi.KindOf(e.Type), Type: e.Type}
	switch {
	case a.Kind == abi.KindTelemetry:
		a.Twin = strings.TrimPrefix(e.Stream, "telemetry/")
		// The payload is a twingraph.Telemetry whose body is the last
		// member: take it without decoding the whole message.
		if i := bytes.Index(e.Payload, bodyKey); i >= 0 && !bytes.Contains(e.Payload[:i], []byte(`"component":`)) {
			a.Payload = bytes.TrimSuffix(e.Payload[i+len(bodyKey):], []byte("}"))
		} else {
			var p twingraph.Telemetry
			if twingraph.Decode(e, &p) != nil {
				return a, false
			}
			a.Component, a.Payload = p.Component, p.Body
		}
	case a.Kind == abi.KindTwinPatched:
		var p twingraph.TwinPatched
		if twingraph.Decode(e, &p) != nil {
			return a, false
		}
		a.Twin, a.Payload = p.ID, p.Patch
		for k := range p.Set {
			a.Changed = append(a.Changed, k)
		}
		a.Changed = append(a.Changed, p.Unset...)
		slices.Sort(a.Changed)
	case a.Kind == abi.KindTwinCreated || a.Kind == abi.KindTwinReplaced:
		var p twingraph.TwinState
		if twingraph.Decode(e, &p) != nil {
			return a, false
		}
		a.Twin, a.Model, a.Payload = p.ID, p.Model, e.Payload
		for k := range p.Properties {
			a.Changed = append(a.Changed, k)
		}
		slices.Sort(a.Changed)
	case a.Kind == abi.KindTwinDeleted:
		a.Twin = strings.TrimPrefix(e.Stream, "twin/")
	case a.Kind >= abi.KindRelationshipCreated:
		var p twingraph.RelationshipRef
		if twingraph.Decode(e, &p) != nil {
			return a, false
		}
		a.Twin, a.Relationship, a.Payload = p.Source, p.Name, e.Payload
		if p.Name == "" { // relationship.patched names no relationship name
			if rel, ok := snap.Relationship(p.Source, p.ID); ok {
				a.Relationship = rel.Name
			}
		}
	default:
		return a, false
	}
	if a.Model == "" {
		if t, ok := snap.Twin(a.Twin); ok {
			a.Model = t.Model
		}
	}
	return a, true
}

// handleMessage is the router handler: one guest call per batch, then its
// outputs.
func (r *runner) handleMessage(msg *message.Message) error {
	j, _ := msg.Context().Value(jobKey{}).(*job)
	if j == nil {
		return nil
	}
	return r.run(j.ctx, j)
}

// run invokes the guest on j and applies its outputs. Errors are retried.
func (r *runner) run(ctx context.Context, j *job) error {
	if ctx.Err() != nil {
		return nil // stopping: the feeder does not advance past this batch
	}
	mod, err := j.v.compiled(ctx, r.m.host)
	if err != nil {
		r.stats.report(Report{Time: time.Now(), Kind: "compile", Message: err.Error()})
		return err
	}
	r.stats.invocations.Add(1)
	res, err := mod.Invoke(ctx, r.state(j.snap), j.abi, j.input)
	if err != nil && ctx.Err() != nil {
		return nil
	}
	if err != nil {
		r.stats.failures.Add(1)
		var f *host.Failure
		kind := "failure"
		if errors.As(err, &f) {
			kind = f.Kind.String()
		}
		r.stats.report(Report{Time: time.Now(), Position: j.events[0].Position, Kind: kind,
			Message: fmt.Sprintf("batch %d..%d (%d events): %v", j.events[0].Position, j.events[len(j.events)-1].Position, len(j.events), err)})
		return err
	}
	r.stats.batches.Add(1)
	r.stats.latency(res.Duration)
	if len(res.Metrics) > 0 {
		r.stats.mu.Lock()
		if r.stats.mu.metrics == nil {
			r.stats.mu.metrics = map[string]float64{}
		}
		for k, v := range res.Metrics {
			r.stats.mu.metrics[k] = v
		}
		r.stats.mu.Unlock()
	}
	if err := r.apply(ctx, j, j.numbered(res.Outputs)); err != nil {
		if ctx.Err() != nil {
			return nil // stopping: as above, and not a failure to retry or isolate
		}
		return err
	}
	return nil
}

// apply writes outputs through the twin service: writes to one twin in
// order, to different twins concurrently (the service combines them into
// few appends). Consecutive patches of one twin are written as one (see
// write.merge), so a twin takes one append and one apply per job where it
// would take one per output; when the service rejects such a patch, its
// outputs are written one by one. Rejected writes are reported, not
// retried; other errors are returned for a retry, which skips the outputs
// already applied.
func (r *runner) apply(ctx context.Context, j *job, outs []host.Output) error {
	if len(outs) == 0 {
		return nil
	}
	byTwin := map[string][]*write{}
	var order []string
	for _, o := range outs {
		ev := j.events[o.Cause]
		ref := outputRef{pos: ev.Position, seq: o.Seq}
		key := ref.key()
		if _, ok := j.applied[key]; ok {
			continue
		}
		if _, ok := j.seen[key]; ok {
			r.stats.deduplicated.Add(1)
			continue
		}
		c := parseActor(ev.Actor)
		step := pathKey(r.name, o.Twin)
		switch {
		case c.hop+1 > r.m.opts.MaxHops:
			r.stats.cascadeStops.Add(1)
			r.stats.report(Report{Time: time.Now(), Position: ev.Position, Kind: "cascade stopped",
				Message: fmt.Sprintf("write to %s would be hop %d, beyond the limit of %d", o.Twin, c.hop+1, r.m.opts.MaxHops)})
			continue
		case slices.Contains(c.path, step):
			r.stats.cascadeStops.Add(1)
			r.stats.report(Report{Time: time.Now(), Position: ev.Position, Kind: "cycle",
				Message: fmt.Sprintf("write to %s at hop %d: %s already wrote %s earlier in this cascade", o.Twin, c.hop+1, r.name, o.Twin)})
			continue
		}
		if act := outputAction(o.Kind); !r.mayWrite(act, j.snap, o.Twin) {
			r.stats.denied.Add(1)
			r.stats.report(Report{Time: time.Now(), Position: ev.Position, Kind: "denied",
				Message: fmt.Sprintf("%s may not %s twin %s: no grant of its manifest allows it", r.principal.Subject, verbs[act], o.Twin)})
			continue
		}
		w := &write{kind: o.Kind, body: o.Body,
			cause: cause{outputs: []outputRef{ref}, hop: c.hop + 1, path: append(slices.Clip(c.path), step)}}
		ws := byTwin[o.Twin]
		if len(ws) == 0 {
			order = append(order, o.Twin)
		} else if ws[len(ws)-1].merge(w) {
			continue
		}
		byTwin[o.Twin] = append(ws, w)
	}
	var mu sync.Mutex
	var retry error
	// done records the outcome of w; it reports false when the job is to
	// be retried.
	done := func(twin string, w *write, err error) bool {
		pos := w.cause.outputs[0].pos
		if err != nil {
			e := engine.AsError(err)
			if retryable(e) {
				mu.Lock()
				retry = err
				mu.Unlock()
				return false
			}
			r.stats.outputErrors.Add(uint64(len(w.cause.outputs)))
			r.stats.report(Report{Time: time.Now(), Position: pos, Kind: "output rejected",
				Message: fmt.Sprintf("write to %s: %s: %s", twin, e.Code, e.Message)})
		} else {
			r.stats.outputs.Add(uint64(len(w.cause.outputs)))
		}
		mu.Lock()
		if j.applied == nil {
			j.applied = map[string]struct{}{}
		}
		for _, o := range w.cause.outputs {
			j.applied[o.key()] = struct{}{}
		}
		mu.Unlock()
		return true
	}
	if len(order) == 0 {
		return nil // nothing left to write
	}
	// writeTwin does the writes to one twin, in order.
	writeTwin := func(twin string) {
		for _, w := range byTwin[twin] {
			err := r.write(ctx, j, twin, w)
			if err != nil && w.parts != nil && !retryable(engine.AsError(err)) {
				// Each output is accepted or rejected as it would be alone.
				for _, p := range w.parts {
					if !done(twin, p, r.write(ctx, j, twin, p)) {
						return
					}
				}
				continue
			}
			if !done(twin, w, err) {
				return
			}
		}
	}
	// The last twin's writes are done here, not on a goroutine of their
	// own: a job writing one twin (a cascade's usual step) waits for its
	// write without a hand-off to another goroutine and back.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, twin := range order[:len(order)-1] {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			writeTwin(twin)
		}()
	}
	writeTwin(order[len(order)-1])
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return retry
}

// write is what apply asks the twin service to do to one twin: one
// output, or several patches merged into one.
type write struct {
	kind host.OutputKind
	body []byte
	// cause names the outputs the write stands for, and the hop count and
	// path of the write.
	cause cause
	// parts are the single outputs a merged patch stands for, in order.
	parts []*write
}

// Bounds of a merged patch.
const (
	maxMergedOutputs = 16
	maxMergedBytes   = 16 << 10
)

// merge makes w, a write to the same twin as next, also do next, when both
// are patches, their causes have the same hop count and path (so the
// cascade's bookkeeping is that of each output) and the merged patch stays
// within bounds. It reports whether it did. The merged patch applies w's
// operations, then next's: JSON Patch operations apply in order, so it
// leaves the twin as the two patches one after the other would, and one
// twin.patched event, naming both outputs in its actor, records it. It is
// validated as a whole: a value one output sets and a later one replaces
// is checked only when the merged patch is rejected and its outputs are
// written one by one.
func (w *write) merge(next *write) bool {
	if w.kind != host.OutputPatch || next.kind != host.OutputPatch ||
		len(w.cause.outputs)+len(next.cause.outputs) > maxMergedOutputs || len(w.body)+len(next.body) > maxMergedBytes ||
		w.cause.hop != next.cause.hop || !slices.Equal(w.cause.path, next.cause.path) {
		return false
	}
	body, ok := joinPatches(w.body, next.body)
	if !ok {
		return false
	}
	if w.parts == nil {
		first := *w
		w.parts = []*write{&first}
	}
	w.parts = append(w.parts, next)
	w.body = body
	w.cause.outputs = append(slices.Clip(w.cause.outputs), next.cause.outputs...)
	return true
}

// joinPatches returns the JSON Patch applying the operations of a, then
// those of b; ok is false unless both are JSON arrays.
func joinPatches(a, b []byte) (_ []byte, ok bool) {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	isArray := func(p []byte) bool { return len(p) >= 2 && p[0] == '[' && p[len(p)-1] == ']' && json.Valid(p) }
	if !isArray(a) || !isArray(b) {
		return nil, false
	}
	ops, more := bytes.TrimSpace(a[1:len(a)-1]), bytes.TrimSpace(b[1:len(b)-1])
	switch {
	case len(more) == 0:
		return a, true
	case len(ops) == 0:
		return b, true
	}
	out := make([]byte, 0, len(ops)+len(more)+3)
	out = append(append(append(out, '['), ops...), ',')
	return append(append(out, more...), ']'), true
}

// write asks the twin service to do w to twin.
func (r *runner) write(ctx context.Context, j *job, twin string, w *write) error {
	actor := formatActor(r.name, j.v.manifest.Version, w.cause)
	ctx = twins.WithCause(ctx, j.causeOf(w))
	switch w.kind {
	case host.OutputPatch:
		_, err := r.m.svc.PatchTwin(ctx, actor, twin, w.body, twins.Cond{})
		return err
	case host.OutputTelemetry:
		o := w.cause.outputs[0]
		id := fmt.Sprintf("%s-%d-%d", r.name, o.pos, o.seq)
		return r.m.svc.SendTelemetry(ctx, actor, twin, "", id, "", w.body)
	}
	return nil
}

// causeOf returns the envelope cause of w's events: its newest output's
// triggering event, and the correlation of that event's chain (the event
// itself when it starts one).
func (j *job) causeOf(w *write) twins.Cause {
	pos := w.cause.outputs[len(w.cause.outputs)-1].pos
	id := strconv.FormatUint(pos, 10)
	c := twins.Cause{CausationID: id, CorrelationID: id}
	// A job's events are in log order: find the cause without a scan per
	// write.
	if i, ok := slices.BinarySearchFunc(j.events, pos, func(e *event.Event, p uint64) int { return cmp.Compare(e.Position, p) }); ok && j.events[i].CorrelationID != "" {
		c.CorrelationID = j.events[i].CorrelationID
	}
	return c
}

// retryable reports whether a write that failed with e may succeed when
// tried again.
func retryable(e *engine.Error) bool {
	return e.Kind == engine.KindInternal || e.Kind == engine.KindUnavailable || e.Kind == engine.KindThrottled || e.Kind == engine.KindTimeout
}

var verbs = map[authz.Action]string{authz.ActWrite: "write", authz.ActTelemetry: "send telemetry to"}

func outputAction(k host.OutputKind) authz.Action {
	if k == host.OutputTelemetry {
		return authz.ActTelemetry
	}
	return authz.ActWrite
}

// mayWrite reports whether the handler may do a to twin id as it is in
// snap.
func (r *runner) mayWrite(a authz.Action, snap *twingraph.Snapshot, id string) bool {
	if r.m.opts.Grants == nil {
		return true
	}
	model := ""
	if t, ok := snap.Twin(id); ok {
		model = t.Model
	}
	return r.may(a, id, model)
}

// isolate handles a batch that failed after its retries: it runs its
// events one at a time, with the same retries, and dead-letters those that
// still fail.
func (m *Manager) isolate(msg *message.Message) error {
	j, _ := msg.Context().Value(jobKey{}).(*job)
	if j == nil {
		return nil
	}
	m.mu.Lock()
	r := m.mu.runners[j.v.manifest.Name]
	m.mu.Unlock()
	if r == nil {
		return nil
	}
	ctx := j.ctx
	for i := range j.events {
		single := j.one(i)
		var err error
		if len(j.events) == 1 {
			err = errors.New(msg.Metadata.Get("reason_poisoned"))
		} else {
			for try := 0; try <= m.opts.Retries; try++ {
				if err = r.run(ctx, single); err == nil || ctx.Err() != nil {
					break
				}
			}
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		e := j.events[i]
		d := DeadLetter{Name: r.name, Version: j.v.manifest.Version, Position: e.Position, Type: e.Type, Twin: j.abi[i].Twin, Error: err.Error(), Time: time.Now().UTC()}
		r.stats.deadLetters.Add(1)
		r.stats.mu.Lock()
		if len(r.stats.mu.dead) == 100 {
			r.stats.mu.dead = r.stats.mu.dead[1:]
		}
		r.stats.mu.dead = append(r.stats.mu.dead, d)
		r.stats.mu.Unlock()
		ev, err := newEvent(DeadLetterStream(r.name), TypeDeadLettered, "system", d)
		if err == nil {
			_, err = m.log.Append(ctx, []event.Event{ev})
		}
		if err != nil {
			m.opts.Logger.Error("record dead letter", "handler", r.name, "position", e.Position, "err", err)
		}
	}
	return nil
}

// Status is what GET /handlers/{name} shows.
type Status struct {
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	State    string    `json:"state"` // "active" or "disabled"
	Deployed time.Time `json:"deployed"`
	// Position is the log position of the current version's deployment.
	Position uint64   `json:"position"`
	SHA256   string   `json:"sha256"`
	Size     int      `json:"size"`
	Manifest Manifest `json:"manifest"`
	// Cursor is the position up to which every event was handled.
	Cursor uint64 `json:"cursor"`
	Stats  Stats  `json:"stats"`
	// Reports are the most recent problems, oldest first.
	Reports     []Report           `json:"reports,omitempty"`
	DeadLetters []DeadLetter       `json:"deadLetters,omitempty"`
	Metrics     map[string]float64 `json:"metrics,omitempty"`
}

// Stats count a handler's work since the process started.
type Stats struct {
	Events       uint64 `json:"events"`
	Batches      uint64 `json:"batches"`
	Invocations  uint64 `json:"invocations"`
	Failures     uint64 `json:"failures"`
	Retries      uint64 `json:"retries"`
	DeadLetters  uint64 `json:"deadLetters"`
	Outputs      uint64 `json:"outputs"`
	OutputErrors uint64 `json:"outputErrors"`
	CascadeStops uint64 `json:"cascadeStops"`
	Deduplicated uint64 `json:"deduplicated"`
	// Hidden counts events of twins the handler may not read (not
	// delivered); Denied, outputs its grants do not allow (not applied).
	Hidden       uint64  `json:"hidden"`
	Denied       uint64  `json:"denied"`
	LatencyP50us float64 `json:"latencyP50us"`
	LatencyP99us float64 `json:"latencyP99us"`
}

func (r *runner) status() *Status {
	v, active := r.current()
	s := &Status{Name: r.name, State: "disabled", Cursor: r.cursor.Load()}
	if active {
		s.State = "active"
	}
	if v != nil {
		s.Version, s.Deployed, s.Position, s.SHA256, s.Size, s.Manifest = v.manifest.Version, v.time, v.pos, v.sha, len(v.module), v.manifest
	}
	st := &r.stats
	s.Stats = Stats{Events: st.events.Load(), Batches: st.batches.Load(), Invocations: st.invocations.Load(),
		Failures: st.failures.Load(), Retries: st.retries.Load(), DeadLetters: st.deadLetters.Load(),
		Outputs: st.outputs.Load(), OutputErrors: st.outputErrors.Load(), CascadeStops: st.cascadeStops.Load(),
		Deduplicated: st.deduplicated.Load(), Hidden: st.hidden.Load(), Denied: st.denied.Load()}
	st.mu.Lock()
	lat := slices.Clone(st.mu.latencies)
	s.Reports = slices.Clone(st.mu.reports)
	s.DeadLetters = slices.Clone(st.mu.dead)
	if len(st.mu.metrics) > 0 {
		s.Metrics = make(map[string]float64, len(st.mu.metrics))
		for k, v := range st.mu.metrics {
			s.Metrics[k] = v
		}
	}
	st.mu.Unlock()
	if len(lat) > 0 {
		slices.Sort(lat)
		s.Stats.LatencyP50us = float64(lat[len(lat)/2].Microseconds())
		s.Stats.LatencyP99us = float64(lat[len(lat)*99/100].Microseconds())
	}
	return s
}

var _ = json.Marshal
