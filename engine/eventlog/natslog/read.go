package natslog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
)

// Read implements eventlog.Log with one batched direct get (JetStream 2.11+),
// which any replica answers from its own store. A replica that lags the
// leader returns a shorter, still correct, prefix; when it has nothing at
// from, the leader decides between "caught up", "out of range" and "lagging"
// (then the leader returns the event at from itself).
func (l *Log) Read(ctx context.Context, from uint64, max int) ([]event.Event, error) {
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	if from == 0 {
		return nil, fmt.Errorf("%w: position 0", eventlog.ErrOutOfRange)
	}
	n := l.opts.ReadBatch
	if max > 0 && max < n {
		n = max
	}
	rctx, cancel := l.requestContext(ctx)
	defer cancel()
	sms := make([]storedMsg, 0, min(n, 64))
	err := l.directBatch(rctx, msgGetRequest{Seq: from, Batch: n}, func(sm storedMsg) error {
		if want := from + uint64(len(sms)); sm.seq != want {
			return fmt.Errorf("%w: position %d missing (found %d)", eventlog.ErrCorrupt, want, sm.seq)
		}
		sms = append(sms, sm)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %d: %w", from, err)
	}
	if len(sms) == 0 {
		head, err := l.Head(rctx)
		if err != nil {
			return nil, fmt.Errorf("read %d: %w", from, err)
		}
		switch {
		case from == head+1:
			return []event.Event{}, nil
		case from > head+1:
			return nil, fmt.Errorf("%w: %d with head %d", eventlog.ErrOutOfRange, from, head)
		}
		// The replica that answered is behind the leader.
		sm, err := l.leaderGet(rctx, msgGetRequest{Seq: from})
		if errors.Is(err, errNotFound) {
			return nil, fmt.Errorf("read %d: %w: position missing below head %d", from, eventlog.ErrCorrupt, head)
		}
		if err != nil {
			return nil, fmt.Errorf("read %d: %w", from, err)
		}
		sms = append(sms, sm)
	}
	out, err := l.events(rctx, sms)
	if err != nil {
		return nil, fmt.Errorf("read %d: %w", from, err)
	}
	l.advance(out[len(out)-1].Position)
	return out, nil
}

// events decodes stored messages into events with their batch times.
func (l *Log) events(ctx context.Context, sms []storedMsg) ([]event.Event, error) {
	if err := l.batchTimes(ctx, sms); err != nil {
		return nil, err
	}
	out := make([]event.Event, len(sms))
	for i := range sms {
		e, err := l.decode(sms[i])
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

// ReadStream implements eventlog.Log with batched direct gets filtered by the
// stream's subject. max <= 0 reads the whole stream. On a replicated stream,
// a result shorter than asked for is checked against the leader's last
// message on the subject, so a lagging replica cannot hide acknowledged
// events.
func (l *Log) ReadStream(ctx context.Context, stream string, from uint64, max int) ([]event.Event, error) {
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	if from == 0 {
		from = 1
	}
	subj := l.subject(stream)
	rctx, cancel := l.requestContext(ctx)
	defer cancel()
	var sms []storedMsg
	next := from // next position to look at
	for max <= 0 || len(sms) < max {
		n := l.opts.ReadBatch
		if max > 0 && max-len(sms) < n {
			n = max - len(sms)
		}
		got := 0
		err := l.directBatch(rctx, msgGetRequest{Seq: next, NextFor: subj, Batch: n}, func(sm storedMsg) error {
			got++
			next = sm.seq + 1
			sms = append(sms, sm)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read stream %q: %w", stream, err)
		}
		if got < n {
			break
		}
	}
	if l.strong && (max <= 0 || len(sms) < max) {
		// The replica may have been behind: fill in from the leader.
		last, err := l.version(rctx, stream, true)
		if err != nil {
			return nil, fmt.Errorf("read stream %q: %w", stream, err)
		}
		for last >= next && (max <= 0 || len(sms) < max) {
			sm, err := l.leaderGet(rctx, msgGetRequest{Seq: next, NextFor: subj})
			if errors.Is(err, errNotFound) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("read stream %q: %w", stream, err)
			}
			next = sm.seq + 1
			sms = append(sms, sm)
		}
	}
	evs, err := l.events(rctx, sms)
	if err != nil {
		return nil, fmt.Errorf("read stream %q: %w", stream, err)
	}
	// A hashed subject token is shared by two stream names only through a
	// SHA-256 collision; drop such strangers all the same.
	out := evs[:0]
	for _, e := range evs {
		if e.Stream == stream {
			out = append(out, e)
		}
	}
	return out, nil
}

// StreamVersion implements eventlog.Log: the sequence of the last message on
// the stream's subject, asked of the leader when the stream is replicated.
func (l *Log) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	if err := l.checkOpen(); err != nil {
		return 0, err
	}
	rctx, cancel := l.requestContext(ctx)
	defer cancel()
	v, err := l.version(rctx, stream, l.strong)
	if err != nil {
		return 0, fmt.Errorf("stream version %q: %w", stream, err)
	}
	return v, nil
}

func (l *Log) version(ctx context.Context, stream string, strong bool) (uint64, error) {
	req := msgGetRequest{LastFor: l.subject(stream)}
	var sm storedMsg
	var err error
	if strong && l.strong {
		sm, err = l.leaderGet(ctx, req)
	} else {
		sm, err = l.directGet(ctx, req)
	}
	if errors.Is(err, errNotFound) {
		return eventlog.NoStream, nil
	}
	if err != nil {
		return 0, err
	}
	return sm.seq, nil
}

// SeekTime implements eventlog.Log with a get by start time, which the
// server answers from its per-block time index.
func (l *Log) SeekTime(ctx context.Context, t time.Time) (uint64, error) {
	if err := l.checkOpen(); err != nil {
		return 0, err
	}
	rctx, cancel := l.requestContext(ctx)
	defer cancel()
	ut := t.UTC()
	sm, err := l.get(rctx, msgGetRequest{StartTime: &ut})
	if err == nil {
		// sm is the first message stamped at or after t. If it opens its
		// batch, its batch time is its stamp; otherwise its batch is
		// stamped with the earlier time of its first message, and the
		// answer is the next batch.
		if sm.k == 1 {
			return sm.seq, nil
		}
		return sm.seq + (sm.n - sm.k) + 1, nil
	}
	if !errors.Is(err, errNotFound) {
		return 0, fmt.Errorf("seek time %s: %w", t.Format(time.RFC3339Nano), err)
	}
	head, err := l.Head(rctx)
	if err != nil {
		return 0, fmt.Errorf("seek time %s: %w", t.Format(time.RFC3339Nano), err)
	}
	return head + 1, nil
}

// Head implements eventlog.Log: the last sequence of the stream, as the
// stream leader reports it.
func (l *Log) Head(ctx context.Context) (uint64, error) {
	if err := l.checkOpen(); err != nil {
		return 0, err
	}
	rctx, cancel := l.requestContext(ctx)
	defer cancel()
	info, err := l.streamInfo(rctx)
	if err != nil {
		return 0, fmt.Errorf("head: %w", err)
	}
	if info.State.FirstSeq > 1 {
		return 0, fmt.Errorf("head: %w: stream starts at %d, events were removed", eventlog.ErrCorrupt, info.State.FirstSeq)
	}
	l.advance(info.State.LastSeq)
	return info.State.LastSeq, nil
}

// Subscribe implements eventlog.Log with eventlog.Tail over Read and
// WaitHead.
func (l *Log) Subscribe(ctx context.Context, from uint64) (eventlog.Subscription, error) {
	if err := l.checkOpen(); err != nil {
		return nil, err
	}
	return eventlog.Tail(l, from, l.opts.ReadBatch), nil
}

// watchRefresh is how long WaitHead waits for the head watcher before asking
// the leader itself: a safety net for a watcher that is reconnecting, not the
// way new events are noticed.
const watchRefresh = 5 * time.Second

// WaitHead implements eventlog.TailSource. The Log keeps one head watcher,
// started on first need: an ordered consumer that delivers only the headers
// of new messages, from which it learns each new stream sequence as the
// server stores it. Waiters block on a channel, never poll.
func (l *Log) WaitHead(ctx context.Context, pos uint64) error {
	for {
		if err := l.checkOpen(); err != nil {
			return err
		}
		if l.seen.Load() >= pos {
			return nil
		}
		if err := l.startWatch(ctx); err != nil {
			return err
		}
		l.mu.Lock()
		grew := l.mu.grew
		l.mu.Unlock()
		if l.seen.Load() >= pos {
			return nil
		}
		t := time.NewTimer(watchRefresh)
		select {
		case <-grew:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-l.done:
			t.Stop()
			return eventlog.ErrClosed
		case <-t.C:
			if _, err := l.Head(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, eventlog.ErrClosed) {
				t.Stop()
				return err
			}
		}
		t.Stop()
	}
}

// startWatch starts the head watcher unless it runs.
func (l *Log) startWatch(ctx context.Context) error {
	l.mu.Lock()
	started := l.mu.started
	if started == nil {
		l.mu.started = make(chan struct{})
	}
	l.mu.Unlock()
	if started != nil { // another call started it, or is starting it
		select {
		case <-started:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-l.done:
			return eventlog.ErrClosed
		}
	}
	watch, err := l.watch(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		close(l.mu.started)
		l.mu.started = nil // let the next WaitHead try again
		return fmt.Errorf("watch head: %w", err)
	}
	if l.closed.Load() {
		watch.Stop()
		close(l.mu.started)
		return eventlog.ErrClosed
	}
	l.mu.watch = watch
	close(l.mu.started)
	return nil
}

func (l *Log) watch(ctx context.Context) (jetstream.ConsumeContext, error) {
	rctx, cancel := l.requestContext(ctx)
	defer cancel()
	cons, err := l.js.OrderedConsumer(rctx, l.opts.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{l.opts.Subject + ".>"},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		HeadersOnly:    true,
	})
	if err != nil {
		return nil, err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if md, err := m.Metadata(); err == nil {
			l.advance(md.Sequence.Stream)
		}
	})
	if err != nil {
		return nil, err
	}
	// The consumer delivers what is stored after it was created; the head
	// covers what was stored before.
	if _, err := l.Head(rctx); err != nil {
		cc.Stop()
		return nil, err
	}
	return cc, nil
}
