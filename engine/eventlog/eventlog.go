// Package eventlog defines the Log, twinlog's system of record: an ordered,
// append-only sequence of events that every projection and processor is
// derived from.
//
// Backends live in subpackages named for what they wrap: memlog (in memory,
// for tests), filelog (the embedded, durable default) and natslog (NATS
// JetStream, for clusters). All of them pass the conformance suite in logtest.
package eventlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twinlog/twinlog/engine/event"
)

// Sentinel errors. Backends wrap them; test with errors.Is.
var (
	// ErrConflict is returned by Append when an expected stream version does
	// not match. Nothing of the batch was written. Use errors.As with
	// *ConflictError to learn which stream and its actual version.
	ErrConflict = errors.New("eventlog: expected version mismatch")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("eventlog: closed")
	// ErrCorrupt is returned when stored data fails its integrity check. The
	// log never returns a corrupt event.
	ErrCorrupt = errors.New("eventlog: corrupt record")
	// ErrFailed is returned by a log that hit an I/O error it cannot recover
	// from in place (such as a failed fsync); it must be closed and reopened,
	// which recovers exactly the acknowledged events.
	ErrFailed = errors.New("eventlog: log failed")
	// ErrInvalid is returned for a malformed request: an empty batch, an
	// event with a preset position or an empty stream or type.
	ErrInvalid = errors.New("eventlog: invalid append")
	// ErrOutOfRange is returned by Read for a start position beyond the head
	// plus one, or below the first retained position.
	ErrOutOfRange = errors.New("eventlog: position out of range")
)

// NoStream is the expected version of a stream that must not exist yet (has
// no events).
const NoStream uint64 = 0

// Expect is an optimistic-concurrency precondition for an append: the stream's
// version must equal Version at the moment the batch is written.
//
// A stream's version is the log position of its most recent event, or
// NoStream when it has none. Using positions rather than per-stream counters
// lets every backend check it natively (JetStream's last subject sequence)
// and lets callers use an event's position as the stream's etag.
type Expect struct {
	Stream  string
	Version uint64
}

// ConflictError describes a failed expectation.
type ConflictError struct {
	Stream   string
	Expected uint64
	Actual   uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("eventlog: stream %q at version %d, expected %d", e.Stream, e.Actual, e.Expected)
}

// Unwrap makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Result reports where an appended batch landed: positions First..Last, all
// stamped with Time.
type Result struct {
	First, Last uint64
	Time        int64
}

// Log is an ordered, durable, append-only sequence of events.
//
// Ordering: positions start at 1 and increase by exactly one per event, with
// no gaps, in the order appends were made durable. Event times never decrease
// with position.
//
// Atomicity: a batch passed to Append is written entirely or not at all; its
// events get consecutive positions, and no other append interleaves with it.
//
// Durability: when Append returns nil, the batch survives a process crash (and,
// for backends that say so in their docs, a power failure) and is visible to
// every read. When Append returns an error other than ErrConflict or
// ErrInvalid, the batch may or may not have been written; callers that retry
// must make their events idempotent or check the log.
//
// Concurrency: all methods are safe for concurrent use. Concurrent appends are
// ordered arbitrarily relative to each other; backends batch concurrent appends
// into one durable write (group commit).
//
// Ownership: Append does not retain the events slice or its payloads after it
// returns. Events returned by reads belong to the caller.
type Log interface {
	// Append writes batch atomically after checking every expectation. The
	// events' Position and Time must be zero; the log assigns them. Several
	// events of the batch may share a stream; an expectation is checked against
	// the stream's version before the batch. On a failed expectation it returns
	// a *ConflictError and writes nothing.
	Append(ctx context.Context, batch []event.Event, expect ...Expect) (Result, error)

	// Read returns up to max events starting at position from, in order. It
	// returns an empty slice when from is Head()+1, and ErrOutOfRange beyond.
	// It may return fewer than max events even when more exist.
	Read(ctx context.Context, from uint64, max int) ([]event.Event, error)

	// ReadStream returns up to max events of stream with position >= from, in
	// order. An unknown stream yields an empty slice.
	ReadStream(ctx context.Context, stream string, from uint64, max int) ([]event.Event, error)

	// StreamVersion returns the position of the stream's last event, or
	// NoStream.
	StreamVersion(ctx context.Context, stream string) (uint64, error)

	// SeekTime returns the position of the first event whose Time is at or
	// after t, or Head()+1 when there is none.
	SeekTime(ctx context.Context, t time.Time) (uint64, error)

	// Head returns the position of the last durable event, 0 for an empty log.
	Head(ctx context.Context) (uint64, error)

	// Subscribe tails the log from position from (inclusive). The
	// subscription is pulled, so a slow consumer slows nothing but itself and
	// the log buffers nothing for it beyond one batch.
	Subscribe(ctx context.Context, from uint64) (Subscription, error)

	// Close releases the log. Appends in flight complete or fail; blocked
	// subscriptions return ErrClosed.
	Close() error
}

// Subscription is a live tail of a log.
type Subscription interface {
	// Next blocks until at least one event at or after the subscription's
	// cursor is durable, then returns a batch of them in order and advances
	// the cursor. It returns ctx.Err() when ctx ends and ErrClosed after the
	// subscription or its log is closed.
	Next(ctx context.Context) ([]event.Event, error)
	// Close ends the subscription.
	Close() error
}

// Validate checks the parts of an append request every backend rejects.
func Validate(batch []event.Event) error {
	if len(batch) == 0 {
		return fmt.Errorf("%w: empty batch", ErrInvalid)
	}
	for i := range batch {
		e := &batch[i]
		switch {
		case e.Position != 0:
			return fmt.Errorf("%w: event %d has position %d preset", ErrInvalid, i, e.Position)
		case e.Stream == "":
			return fmt.Errorf("%w: event %d has no stream", ErrInvalid, i)
		case e.Type == "":
			return fmt.Errorf("%w: event %d has no type", ErrInvalid, i)
		case len(e.Stream) > event.MaxStringLen || len(e.Type) > event.MaxStringLen ||
			len(e.Actor) > event.MaxStringLen || len(e.CausationID) > event.MaxStringLen ||
			len(e.CorrelationID) > event.MaxStringLen:
			return fmt.Errorf("%w: event %d has a string field over %d bytes", ErrInvalid, i, event.MaxStringLen)
		case len(e.Payload) > event.MaxPayloadLen:
			return fmt.Errorf("%w: event %d payload over %d bytes", ErrInvalid, i, event.MaxPayloadLen)
		}
	}
	return nil
}
