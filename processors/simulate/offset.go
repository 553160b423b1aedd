package simulate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
)

var _ eventlog.Log = (*OffsetLog)(nil)

// OffsetLog presents a log whose positions start at 1 as one that continues
// after position base: the inner log's position p is base+p outside. A
// branch's overlay uses it so that its engine, restored at the fork
// position, applies the overlay's first event as base+1.
//
// Positions 1..base are not part of the log: Read and Subscribe below
// base+1 return eventlog.ErrOutOfRange. The streams written before the fork
// are not known to it either: StreamVersion reports NoStream for a stream
// with no event after base, and an expectation on a version at or below base
// (the stream as it was at the fork) holds as long as the overlay has no
// event of that stream. Every method is safe for concurrent use, as the
// inner log's are.
type OffsetLog struct {
	inner eventlog.Log
	base  uint64
}

// NewOffsetLog returns inner shifted by base. It takes ownership of inner:
// Close closes it.
func NewOffsetLog(inner eventlog.Log, base uint64) *OffsetLog {
	return &OffsetLog{inner: inner, base: base}
}

// Base returns the position the log continues after.
func (l *OffsetLog) Base() uint64 { return l.base }

func (l *OffsetLog) out(p uint64) uint64 {
	if p == 0 {
		return 0
	}
	return p + l.base
}

func (l *OffsetLog) shift(evs []event.Event) []event.Event {
	for i := range evs {
		evs[i].Position += l.base
	}
	return evs
}

// Append implements eventlog.Log.
func (l *OffsetLog) Append(ctx context.Context, batch []event.Event, expect ...eventlog.Expect) (eventlog.Result, error) {
	var in []eventlog.Expect
	if len(expect) > 0 {
		in = make([]eventlog.Expect, len(expect))
		for i, x := range expect {
			in[i] = x
			if x.Version <= l.base {
				in[i].Version = eventlog.NoStream
			} else {
				in[i].Version = x.Version - l.base
			}
		}
	}
	res, err := l.inner.Append(ctx, batch, in...)
	if err != nil {
		var ce *eventlog.ConflictError
		if errors.As(err, &ce) {
			actual := l.out(ce.Actual)
			for _, x := range expect {
				if x.Stream == ce.Stream {
					return eventlog.Result{}, &eventlog.ConflictError{Stream: ce.Stream, Expected: x.Version, Actual: actual}
				}
			}
			return eventlog.Result{}, &eventlog.ConflictError{Stream: ce.Stream, Expected: ce.Expected, Actual: actual}
		}
		return eventlog.Result{}, err
	}
	res.First, res.Last = l.out(res.First), l.out(res.Last)
	return res, nil
}

// Read implements eventlog.Log.
func (l *OffsetLog) Read(ctx context.Context, from uint64, max int) ([]event.Event, error) {
	if from <= l.base {
		return nil, fmt.Errorf("%w: %d is at or before the fork position %d", eventlog.ErrOutOfRange, from, l.base)
	}
	evs, err := l.inner.Read(ctx, from-l.base, max)
	if err != nil {
		return nil, err
	}
	return l.shift(evs), nil
}

// ReadStream implements eventlog.Log. It returns only the stream's events
// after base.
func (l *OffsetLog) ReadStream(ctx context.Context, stream string, from uint64, max int) ([]event.Event, error) {
	in := uint64(1)
	if from > l.base {
		in = from - l.base
	}
	evs, err := l.inner.ReadStream(ctx, stream, in, max)
	if err != nil {
		return nil, err
	}
	return l.shift(evs), nil
}

// StreamVersion implements eventlog.Log.
func (l *OffsetLog) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	v, err := l.inner.StreamVersion(ctx, stream)
	return l.out(v), err
}

// SeekTime implements eventlog.Log.
func (l *OffsetLog) SeekTime(ctx context.Context, t time.Time) (uint64, error) {
	p, err := l.inner.SeekTime(ctx, t)
	if err != nil {
		return 0, err
	}
	return p + l.base, nil
}

// Head implements eventlog.Log: base for an empty inner log.
func (l *OffsetLog) Head(ctx context.Context) (uint64, error) {
	h, err := l.inner.Head(ctx)
	if err != nil {
		return 0, err
	}
	return h + l.base, nil
}

// Subscribe implements eventlog.Log. from 0 means base+1.
func (l *OffsetLog) Subscribe(ctx context.Context, from uint64) (eventlog.Subscription, error) {
	if from == 0 {
		from = l.base + 1
	}
	if from <= l.base {
		return nil, fmt.Errorf("%w: %d is at or before the fork position %d", eventlog.ErrOutOfRange, from, l.base)
	}
	sub, err := l.inner.Subscribe(ctx, from-l.base)
	if err != nil {
		return nil, err
	}
	return &offsetSub{sub: sub, l: l}, nil
}

// Close implements eventlog.Log; it closes the inner log.
func (l *OffsetLog) Close() error { return l.inner.Close() }

type offsetSub struct {
	sub eventlog.Subscription
	l   *OffsetLog
}

func (s *offsetSub) Next(ctx context.Context) ([]event.Event, error) {
	evs, err := s.sub.Next(ctx)
	if err != nil {
		return nil, err
	}
	return s.l.shift(evs), nil
}

func (s *offsetSub) Close() error { return s.sub.Close() }
