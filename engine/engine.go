// Package engine is twinlog's write path and the loop that keeps projections
// in step with the log.
//
// A write is a Command. The engine asks it to Decide, against current state,
// which events to append and on which stream versions that decision depends;
// appends them atomically with those expectations; and, when another writer
// got there first (eventlog.ErrConflict), waits for the projections to catch
// up and asks again. A write is acknowledged only after its events are durable
// and applied, so a read after an acknowledged write sees it.
//
// One goroutine, the applier, tails the log and feeds every event, in log
// order, to the registered projections. Projections are pure and
// deterministic; on start they are rebuilt by replaying the log from the
// position they were restored at (0, or a snapshot's).
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
)

// Projection is state derived from the log.
//
// Apply is called from one goroutine, in log order, with consecutive batches
// (the first event of a batch follows the last of the previous one). It must
// be deterministic: no clocks, no I/O, no randomness; the same events give the
// same state. It must not retain the batch slice; it may retain events'
// strings and payloads. An error halts the engine: a projection that cannot
// apply an event that the log accepted is a bug, and skipping it would make
// the state wrong silently.
type Projection interface {
	Apply(batch []event.Event) error
}

// Decision is what a Command decided: the events to append, and the stream
// versions the decision was based on.
type Decision struct {
	Events []event.Event
	Expect []eventlog.Expect
	// Value is returned to the caller of Execute unchanged (for example the
	// resulting twin). Commands that need the appended positions fill it
	// from Done.
	Value any
}

// Command is one write request.
type Command interface {
	// Decide validates the request against current state and returns the
	// events to append. It may be called several times when concurrent
	// writes conflict; each call sees state at least as new as the previous.
	// A returned error aborts the command and is returned by Execute as is.
	// A Decision with no events completes the command without appending.
	Decide(ctx context.Context) (Decision, error)
}

// CommandFunc adapts a function to Command.
type CommandFunc func(ctx context.Context) (Decision, error)

// Decide implements Command.
func (f CommandFunc) Decide(ctx context.Context) (Decision, error) { return f(ctx) }

// ErrHalted is returned once a projection has failed to apply an event.
var ErrHalted = errors.New("engine: halted")

// ErrTooManyConflicts is returned by Execute when a command kept conflicting
// with concurrent writes.
var ErrTooManyConflicts = errors.New("engine: too many conflicting retries")

// Options configures an Engine. The zero value is valid.
type Options struct {
	// From is the position the projections are already at (restored from a
	// snapshot). Default 0: replay the whole log.
	From uint64
	// MaxRetries bounds how often Execute re-decides a conflicting command.
	// Default 64.
	MaxRetries int
	// ReadBatch is the most events handed to Apply at once. Default 4096.
	ReadBatch int
	// Logger receives the engine's own reports. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports invalid options.
func (o *Options) Validate() error {
	if o.MaxRetries < 0 || o.ReadBatch < 0 {
		return errors.New("engine: negative option")
	}
	return nil
}

// Engine drives commands into the log and the log into projections.
type Engine struct {
	log   eventlog.Log
	projs []Projection
	opts  Options

	applied atomic.Uint64
	lanes   [lanes]sync.Mutex
	// applying is held while a batch is applied to the projections (see
	// Exclusive).
	applying sync.Mutex

	mu struct {
		sync.Mutex
		advanced chan struct{} // closed and replaced whenever applied grows or the engine halts
		err      error         // why the applier stopped
	}
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns an engine over log feeding projs. Call Start to begin applying.
func New(log eventlog.Log, opts Options, projs ...Projection) (*Engine, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 64
	}
	if opts.ReadBatch == 0 {
		opts.ReadBatch = 4096
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	e := &Engine{log: log, projs: projs, opts: opts, done: make(chan struct{})}
	e.applied.Store(opts.From)
	e.mu.advanced = make(chan struct{})
	return e, nil
}

// Log returns the engine's log.
func (e *Engine) Log() eventlog.Log { return e.log }

// Start replays the log into the projections up to its current head, then
// keeps tailing it in the background until Stop. It returns once the replay
// is complete, so state is current when it returns. progress, when not nil,
// is called periodically during the replay with the applied position and
// the head.
func (e *Engine) Start(ctx context.Context, progress func(applied, head uint64)) error {
	head, err := e.Run(ctx)
	if err != nil {
		return err
	}
	if progress != nil {
		for {
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			err := e.WaitApplied(wctx, head)
			cancel()
			progress(e.applied.Load(), head)
			if err == nil || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				return err
			}
		}
	}
	return e.WaitApplied(ctx, head)
}

// Run starts applying the log to the projections in the background, from
// Options.From, without waiting for the replay, and returns the log's head
// at the start. ctx bounds only the start; Stop ends the applier.
func (e *Engine) Run(ctx context.Context) (head uint64, err error) {
	head, err = e.log.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("read head: %w", err)
	}
	if e.opts.From > head {
		return 0, fmt.Errorf("engine: projections at %d, beyond the log head %d", e.opts.From, head)
	}
	sub, err := e.log.Subscribe(ctx, e.opts.From+1)
	if err != nil {
		return 0, fmt.Errorf("subscribe: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go e.run(runCtx, sub)
	return head, nil
}

func (e *Engine) run(ctx context.Context, sub eventlog.Subscription) {
	defer close(e.done)
	defer sub.Close()
	for {
		batch, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				e.halt(eventlog.ErrClosed)
				return
			}
			e.halt(fmt.Errorf("tail log: %w", err))
			return
		}
		for len(batch) > 0 {
			n := min(len(batch), e.opts.ReadBatch)
			part := batch[:n]
			batch = batch[n:]
			if want := e.applied.Load() + 1; part[0].Position != want {
				e.halt(fmt.Errorf("%w: log delivered position %d, expected %d", ErrHalted, part[0].Position, want))
				return
			}
			e.applying.Lock()
			for _, p := range e.projs {
				if err := p.Apply(part); err != nil {
					e.applying.Unlock()
					e.halt(fmt.Errorf("%w: apply %T at %d..%d: %w", ErrHalted, p, part[0].Position, part[n-1].Position, err))
					return
				}
			}
			e.applied.Store(part[n-1].Position)
			e.applying.Unlock()
			e.mu.Lock()
			close(e.mu.advanced)
			e.mu.advanced = make(chan struct{})
			e.mu.Unlock()
		}
	}
}

func (e *Engine) halt(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.err == nil {
		e.mu.err = err
		if !errors.Is(err, eventlog.ErrClosed) {
			e.opts.Logger.Error("engine halted", "err", err, "applied", e.applied.Load())
		}
	}
	close(e.mu.advanced)
	e.mu.advanced = make(chan struct{})
}

// Err returns why the applier stopped, or nil while it runs.
func (e *Engine) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.err
}

// Applied returns the position of the last event applied to every projection.
func (e *Engine) Applied() uint64 { return e.applied.Load() }

// WaitApplied blocks until every projection has applied position pos.
func (e *Engine) WaitApplied(ctx context.Context, pos uint64) error {
	for {
		if e.applied.Load() >= pos {
			return nil
		}
		e.mu.Lock()
		ch, err := e.mu.advanced, e.mu.err
		e.mu.Unlock()
		if e.applied.Load() >= pos {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Exclusive calls fn between two batches: no projection applies anything
// until fn returns, and every projection is at position applied. fn may
// change how a projection holds its state, not what it holds (see
// twingraph.Graph.Adopt). It must not wait for the engine (Execute,
// WaitApplied): the applier waits for it.
func (e *Engine) Exclusive(fn func(applied uint64) error) error {
	e.applying.Lock()
	defer e.applying.Unlock()
	if err := e.Err(); err != nil {
		return err
	}
	return fn(e.applied.Load())
}

// Result is the outcome of an executed command.
type Result struct {
	// Appended is where the command's events landed; zero when it appended
	// nothing.
	Appended eventlog.Result
	// Value is the Decision's Value.
	Value any
}

// Execute runs cmd: decide, append with expectations, and on conflict wait
// for the projections to catch up and decide again. It returns after the
// events are durable and applied.
//
// Writes to one stream are optimistic while they do not collide. Once a
// command conflicts on a stream, it retries holding that stream's lane, so
// contending writers to one twin queue up one after another (as ADT
// processes requests to one twin) instead of retrying against each other.
func (e *Engine) Execute(ctx context.Context, cmd Command) (Result, error) {
	var lane *sync.Mutex
	defer func() {
		if lane != nil {
			lane.Unlock()
		}
	}()
	for attempt := 0; ; attempt++ {
		if err := e.Err(); err != nil {
			return Result{}, err
		}
		d, err := cmd.Decide(ctx)
		if err != nil {
			return Result{}, err
		}
		if len(d.Events) == 0 {
			return Result{Value: d.Value}, nil
		}
		if lane == nil && len(d.Expect) > 0 {
			// Writers are queued on this stream: join the queue rather
			// than race the writer holding it.
			l := e.lane(d.Expect[0].Stream)
			if !l.TryLock() {
				l.Lock()
				lane = l
				continue
			}
			l.Unlock()
		}
		r, err := e.log.Append(ctx, d.Events, d.Expect...)
		var ce *eventlog.ConflictError
		if errors.As(err, &ce) {
			if attempt >= e.opts.MaxRetries {
				return Result{}, fmt.Errorf("%w: %w", ErrTooManyConflicts, err)
			}
			if l := e.lane(ce.Stream); l != lane {
				if lane != nil {
					lane.Unlock()
				}
				lane = l
				lane.Lock()
			}
			// The state the command decided on is stale. Wait until
			// the projections have seen the conflicting write, then
			// decide again.
			if err := e.WaitApplied(ctx, ce.Actual); err != nil {
				return Result{}, err
			}
			continue
		}
		if err != nil {
			return Result{}, fmt.Errorf("append: %w", err)
		}
		if err := e.WaitApplied(ctx, r.Last); err != nil {
			return Result{}, err
		}
		return Result{Appended: r, Value: d.Value}, nil
	}
}

// lanes serialize retries of commands that conflicted on the same stream.
const lanes = 256

func (e *Engine) lane(stream string) *sync.Mutex {
	// FNV-1a.
	h := uint32(2166136261)
	for i := 0; i < len(stream); i++ {
		h ^= uint32(stream[i])
		h *= 16777619
	}
	return &e.lanes[h%lanes]
}

// Append appends events with no decision (telemetry and other facts that
// depend on no state) and returns once they are durable. It does not wait for
// projections; call WaitApplied for that.
func (e *Engine) Append(ctx context.Context, events []event.Event, expect ...eventlog.Expect) (eventlog.Result, error) {
	if err := e.Err(); err != nil {
		return eventlog.Result{}, err
	}
	return e.log.Append(ctx, events, expect...)
}

// Stop stops the applier. It does not close the log.
func (e *Engine) Stop() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
	}
}
