// Package memlog is an in-memory eventlog.Log for tests and ephemeral
// sandboxes. It is durable only for the life of the process.
package memlog

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
)

var _ eventlog.Log = (*Log)(nil)

// Log is an in-memory log. The zero value is not usable; call New.
type Log struct {
	now func() time.Time

	mu struct {
		sync.RWMutex
		// chunks hold the events in order, chunkSize to a chunk: a
		// long log grows without copying what it holds.
		chunks  [][]event.Event
		n       uint64              // events held
		streams map[string][]uint64 // positions per stream
		lastT   int64
		closed  bool
		grew    chan struct{} // closed and replaced on every append
	}
}

// Options configures a Log. The zero value is valid.
type Options struct {
	// Now is the clock stamping appended events. Default: time.Now.
	Now func() time.Time
}

// New returns an empty log.
func New(opts Options) *Log {
	l := &Log{now: opts.Now}
	if l.now == nil {
		l.now = time.Now
	}
	l.mu.streams = make(map[string][]uint64)
	l.mu.grew = make(chan struct{})
	return l
}

const chunkSize = 4096

// at returns the event at pos (1-based, at most n). l.mu must be held.
func (l *Log) at(pos uint64) *event.Event {
	i := pos - 1
	return &l.mu.chunks[i/chunkSize][i%chunkSize]
}

// push adds e at the end. l.mu must be held for writing.
func (l *Log) push(e event.Event) {
	if l.mu.n%chunkSize == 0 {
		l.mu.chunks = append(l.mu.chunks, make([]event.Event, 0, chunkSize))
	}
	c := &l.mu.chunks[len(l.mu.chunks)-1]
	*c = append(*c, e)
	l.mu.n++
}

func cloneEvent(e *event.Event) event.Event {
	c := *e
	if e.Payload != nil {
		c.Payload = append([]byte(nil), e.Payload...)
	}
	return c
}

// Append implements eventlog.Log.
func (l *Log) Append(ctx context.Context, batch []event.Event, expect ...eventlog.Expect) (eventlog.Result, error) {
	if err := ctx.Err(); err != nil {
		return eventlog.Result{}, err
	}
	if err := eventlog.Validate(batch); err != nil {
		return eventlog.Result{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return eventlog.Result{}, eventlog.ErrClosed
	}
	for _, x := range expect {
		if v := l.versionLocked(x.Stream); v != x.Version {
			return eventlog.Result{}, &eventlog.ConflictError{Stream: x.Stream, Expected: x.Version, Actual: v}
		}
	}
	t := l.now().UnixNano()
	if t < l.mu.lastT {
		t = l.mu.lastT
	}
	l.mu.lastT = t
	first := l.mu.n + 1
	for i := range batch {
		e := cloneEvent(&batch[i])
		e.Position = first + uint64(i)
		e.Time = t
		l.push(e)
		l.mu.streams[e.Stream] = append(l.mu.streams[e.Stream], e.Position)
	}
	close(l.mu.grew)
	l.mu.grew = make(chan struct{})
	return eventlog.Result{First: first, Last: first + uint64(len(batch)) - 1, Time: t}, nil
}

func (l *Log) versionLocked(stream string) uint64 {
	ps := l.mu.streams[stream]
	if len(ps) == 0 {
		return eventlog.NoStream
	}
	return ps[len(ps)-1]
}

// Read implements eventlog.Log.
func (l *Log) Read(ctx context.Context, from uint64, max int) ([]event.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return nil, eventlog.ErrClosed
	}
	head := l.mu.n
	if from == 0 || from > head+1 {
		return nil, fmt.Errorf("%w: %d with head %d", eventlog.ErrOutOfRange, from, head)
	}
	end := head
	if max > 0 && from-1+uint64(max) < end {
		end = from - 1 + uint64(max)
	}
	// The payloads are copied into one buffer for the call, as a file
	// log's alias the buffer it read.
	size := 0
	for p := from; p <= end; p++ {
		size += len(l.at(p).Payload)
	}
	buf := make([]byte, 0, size)
	out := make([]event.Event, end-from+1)
	for i := range out {
		e := l.at(from + uint64(i))
		out[i] = *e
		if e.Payload != nil {
			start := len(buf)
			buf = append(buf, e.Payload...)
			out[i].Payload = buf[start:len(buf):len(buf)]
		}
	}
	return out, nil
}

// ReadStream implements eventlog.Log.
func (l *Log) ReadStream(ctx context.Context, stream string, from uint64, max int) ([]event.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return nil, eventlog.ErrClosed
	}
	ps := l.mu.streams[stream]
	i := sort.Search(len(ps), func(i int) bool { return ps[i] >= from })
	var out []event.Event
	for ; i < len(ps) && (max <= 0 || len(out) < max); i++ {
		out = append(out, cloneEvent(l.at(ps[i])))
	}
	return out, nil
}

// StreamVersion implements eventlog.Log.
func (l *Log) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return 0, eventlog.ErrClosed
	}
	return l.versionLocked(stream), nil
}

// SeekTime implements eventlog.Log.
func (l *Log) SeekTime(ctx context.Context, t time.Time) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return 0, eventlog.ErrClosed
	}
	ns := t.UnixNano()
	i := sort.Search(int(l.mu.n), func(i int) bool { return l.at(uint64(i)+1).Time >= ns })
	return uint64(i) + 1, nil
}

// Head implements eventlog.Log.
func (l *Log) Head(ctx context.Context) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return 0, eventlog.ErrClosed
	}
	return l.mu.n, nil
}

// WaitHead implements eventlog.TailSource.
func (l *Log) WaitHead(ctx context.Context, pos uint64) error {
	for {
		l.mu.RLock()
		closed, head, grew := l.mu.closed, l.mu.n, l.mu.grew
		l.mu.RUnlock()
		if closed {
			return eventlog.ErrClosed
		}
		if head >= pos {
			return nil
		}
		select {
		case <-grew:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Subscribe implements eventlog.Log.
func (l *Log) Subscribe(ctx context.Context, from uint64) (eventlog.Subscription, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return nil, eventlog.ErrClosed
	}
	return eventlog.Tail(l, from, 0), nil
}

// Close implements eventlog.Log.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.mu.closed {
		l.mu.closed = true
		close(l.mu.grew)
	}
	return nil
}
