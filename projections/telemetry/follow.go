package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/eventlog"
)

// FollowOptions configures a Follower. The zero value is valid.
type FollowOptions struct {
	// Logger receives the follower's reports (a halt). Default
	// slog.Default().
	Logger *slog.Logger
}

// Follower keeps a Store current with a log: an engine applier of its own
// tails the log from the position after the store's own (position 1 for a
// new store) and applies every batch in order, independently of the node's
// engine, whose projections may start later in the log from a snapshot.
//
// The store is ready once it has applied the log's head as it was when the
// follower started; until then it holds only part of the history.
type Follower struct {
	store *Store
	log   eventlog.Log
	eng   *engine.Engine
	start uint64 // the head when the follower started
}

// ErrStopped is returned by a Follower's waits after Stop.
var ErrStopped = errors.New("telemetry: follower stopped")

// Follow starts feeding s from lg. ctx bounds only the start (reading the
// head and subscribing); Stop ends the follower.
func Follow(ctx context.Context, lg eventlog.Log, s *Store, opts FollowOptions) (*Follower, error) {
	eng, err := engine.New(lg, engine.Options{From: s.Position(), Logger: opts.Logger}, s)
	if err != nil {
		return nil, err
	}
	head, err := eng.Run(ctx)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	return &Follower{store: s, log: lg, eng: eng, start: head}, nil
}

// stopped maps the applier's stop to ErrStopped.
func stopped(err error) error {
	if errors.Is(err, eventlog.ErrClosed) {
		return ErrStopped
	}
	return err
}

// Store returns the store the follower feeds.
func (f *Follower) Store() *Store { return f.store }

// Position returns the position of the last event applied to the store.
func (f *Follower) Position() uint64 { return f.eng.Applied() }

// Err returns why the follower stopped, or nil while it runs.
func (f *Follower) Err() error { return stopped(f.eng.Err()) }

// Ready returns nil once the store has caught up with the log's head as it
// was at the start, an engine.KindUnavailable error while it rebuilds, and
// the follower's error once it has stopped.
func (f *Follower) Ready() error {
	if err := f.Err(); err != nil {
		return engine.Errorf(engine.KindUnavailable, "ServiceUnavailable", "the telemetry history has stopped: %v", err)
	}
	if at := f.eng.Applied(); at < f.start {
		return engine.Errorf(engine.KindUnavailable, "ServiceUnavailable", "the telemetry history is being rebuilt from the log: at position %d of %d", at, f.start)
	}
	return nil
}

// WaitApplied blocks until the store has applied position pos, ctx ends or
// the follower stops.
func (f *Follower) WaitApplied(ctx context.Context, pos uint64) error {
	return stopped(f.eng.WaitApplied(ctx, pos))
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
func (f *Follower) Stop() { f.eng.Stop() }
