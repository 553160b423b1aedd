package eventlog

import (
	"context"

	"github.com/twinlog/twinlog/engine/event"
)

// TailSource is what Tail needs from a backend: forward reads and a way to
// wait for the head to reach a position.
type TailSource interface {
	Read(ctx context.Context, from uint64, max int) ([]event.Event, error)
	// WaitHead blocks until the head is at or beyond pos, the context ends
	// (returning ctx.Err()) or the log closes (returning ErrClosed).
	WaitHead(ctx context.Context, pos uint64) error
}

// Tail returns a Subscription over src starting at position from, delivering
// batches of at most max events (0 means 1024). It is the Subscribe
// implementation for backends that can wait on their head.
func Tail(src TailSource, from uint64, max int) Subscription {
	if from == 0 {
		from = 1
	}
	if max <= 0 {
		max = 1024
	}
	closed, cancel := context.WithCancel(context.Background())
	return &tail{src: src, next: from, max: max, closed: closed, close: cancel}
}

type tail struct {
	src  TailSource
	next uint64
	max  int

	closed context.Context // done once Close is called
	close  context.CancelFunc
}

func (t *tail) Next(ctx context.Context) ([]event.Event, error) {
	var wctx context.Context // set up at the first wait
	for {
		if t.closed.Err() != nil {
			return nil, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// A follower that keeps up finds events waiting and never sets up
		// a wait. Before the first wait the head may be short of t.next,
		// which some backends answer with an error; after it, an error is
		// the read's own.
		evs, err := t.src.Read(ctx, t.next, t.max)
		if err != nil && wctx != nil {
			return nil, err
		}
		if err == nil && len(evs) > 0 {
			t.next = evs[len(evs)-1].Position + 1
			return evs, nil
		}
		if wctx == nil {
			// Tie the wait to Close as well as to ctx, without a
			// goroutine per call.
			var cancel context.CancelFunc
			wctx, cancel = context.WithCancel(ctx)
			defer cancel()
			defer context.AfterFunc(t.closed, cancel)()
		}
		if err := t.src.WaitHead(wctx, t.next); err != nil {
			if t.closed.Err() != nil {
				return nil, ErrClosed
			}
			return nil, err
		}
	}
}

func (t *tail) Close() error {
	t.close()
	return nil
}
