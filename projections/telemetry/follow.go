package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/eventlog"
)

// FollowOptions configures a Follower. The zero value is valid.
type FollowOptions struct {
	// Logger receives the follower's reports (a halt). Default
	// slog.Default().
	Logger *slog.Logger
}

// Follower keeps a Store current with a log: one goroutine tails the log
// from the position after the store's own (position 1 for a new store) and
// applies every batch in order, independently of the engine's
// projections, which may start later in the log from a snapshot.
//
// The store is ready once it has applied the log's head as it was when the
// follower started; until then it holds only part of the history.
type Follower struct {
	store  *Store
	log    eventlog.Log
	logger *slog.Logger
	start  uint64 // the head when the follower started

	applied atomic.Uint64
	mu      struct {
		sync.Mutex
		advanced chan struct{} // closed and replaced when applied grows or the follower halts
		err      error         // why the follower stopped
	}
	cancel context.CancelFunc
	done   chan struct{}
}

// ErrStopped is returned by a Follower's waits after Stop.
var ErrStopped = errors.New("telemetry: follower stopped")

// Follow starts feeding s from lg. ctx bounds only the start (reading the
// head and subscribing); Stop ends the follower.
func Follow(ctx context.Context, lg eventlog.Log, s *Store, opts FollowOptions) (*Follower, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	head, err := lg.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("read head: %w", err)
	}
	from := s.Position()
	if from > head {
		return nil, fmt.Errorf("telemetry: store at %d, beyond the log head %d", from, head)
	}
	sub, err := lg.Subscribe(ctx, from+1)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	f := &Follower{store: s, log: lg, logger: opts.Logger, start: head, done: make(chan struct{})}
	f.applied.Store(from)
	f.mu.advanced = make(chan struct{})
	runCtx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go f.run(runCtx, sub)
	return f, nil
}

func (f *Follower) run(ctx context.Context, sub eventlog.Subscription) {
	defer close(f.done)
	defer sub.Close()
	for {
		batch, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				f.halt(ErrStopped)
			} else {
				f.halt(fmt.Errorf("tail log: %w", err))
			}
			return
		}
		if len(batch) == 0 {
			continue
		}
		if want := f.applied.Load() + 1; batch[0].Position != want {
			f.halt(fmt.Errorf("telemetry: log delivered position %d, expected %d", batch[0].Position, want))
			return
		}
		if err := f.store.Apply(batch); err != nil {
			f.halt(fmt.Errorf("apply %d..%d: %w", batch[0].Position, batch[len(batch)-1].Position, err))
			return
		}
		f.applied.Store(batch[len(batch)-1].Position)
		f.mu.Lock()
		close(f.mu.advanced)
		f.mu.advanced = make(chan struct{})
		f.mu.Unlock()
	}
}

func (f *Follower) halt(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.err == nil {
		f.mu.err = err
		if !errors.Is(err, ErrStopped) {
			f.logger.Error("telemetry history halted", "err", err, "applied", f.applied.Load())
		}
	}
	close(f.mu.advanced)
	f.mu.advanced = make(chan struct{})
}

// Store returns the store the follower feeds.
func (f *Follower) Store() *Store { return f.store }

// Position returns the position of the last event applied to the store.
func (f *Follower) Position() uint64 { return f.applied.Load() }

// Err returns why the follower stopped, or nil while it runs.
func (f *Follower) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.err
}

// Ready returns nil once the store has caught up with the log's head as it
// was at the start, an engine.KindUnavailable error while it rebuilds, and
// the follower's error once it has stopped.
func (f *Follower) Ready() error {
	if err := f.Err(); err != nil {
		return engine.Errorf(engine.KindUnavailable, "ServiceUnavailable", "the telemetry history has stopped: %v", err)
	}
	if at := f.applied.Load(); at < f.start {
		return engine.Errorf(engine.KindUnavailable, "ServiceUnavailable", "the telemetry history is being rebuilt from the log: at position %d of %d", at, f.start)
	}
	return nil
}

// WaitApplied blocks until the store has applied position pos, ctx ends or
// the follower stops.
func (f *Follower) WaitApplied(ctx context.Context, pos uint64) error {
	for {
		if f.applied.Load() >= pos {
			return nil
		}
		f.mu.Lock()
		ch, err := f.mu.advanced, f.mu.err
		f.mu.Unlock()
		if f.applied.Load() >= pos {
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

// Sync blocks until the store has applied everything the log held when
// Sync was called: a read after Sync sees every earlier write.
func (f *Follower) Sync(ctx context.Context) error {
	head, err := f.log.Head(ctx)
	if err != nil {
		return fmt.Errorf("read head: %w", err)
	}
	return f.WaitApplied(ctx, head)
}

// Stop stops the follower and waits for its goroutine. It does not close
// the log. Stop is idempotent.
func (f *Follower) Stop() {
	f.cancel()
	<-f.done
}
