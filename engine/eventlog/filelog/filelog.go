package filelog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
)

var _ eventlog.Log = (*Log)(nil)
var _ eventlog.TailSource = (*Log)(nil)

// Log is the embedded, durable, file-backed eventlog.Log. Open one with Open;
// all methods are safe for concurrent use.
type Log struct {
	dir       string
	opts      Options
	lock      io.Closer
	recovered RecoveryInfo

	mu struct {
		sync.RWMutex
		segs    []*segment        // in position order; the last is active
		streams map[string]uint64 // stream -> durable version; written by the writer only
		head    uint64            // last durable position
		closed  bool
		grew    chan struct{} // closed and replaced when head advances or the log closes
	}

	q struct {
		sync.Mutex
		reqs   []*request
		closed bool
	}
	wake chan struct{} // a send means the queue may have work or is closed
	done chan struct{} // closed when the writer goroutine exits

	w writer // owned by the writer goroutine
}

// segment is one segment file. base and f are immutable; the other fields
// are changed by the writer under Log.mu and read by readers under it.
type segment struct {
	base     uint64
	name     string
	f        File
	last     uint64 // last position in the segment, base-1 when empty
	lastTime int64
	size     int64        // durable bytes: header plus complete frames
	index    []indexEntry // sparse index; append-only
	// recent are where the segment's last frames start, for readers that
	// follow the head: a read from a position in them starts at its frame
	// rather than at the sparse index entry before it (up to
	// IndexInterval back, read and skipped on every read).
	recent frameStarts
}

// frameStarts is a ring of the positions and offsets of the last frames
// written to a segment.
type frameStarts struct {
	pos [16]uint64
	off [16]int64
	n   int // frames recorded; the newest is at (n-1)%len(pos)
}

func (f *frameStarts) add(pos uint64, off int64) {
	i := f.n % len(f.pos)
	f.pos[i], f.off[i] = pos, off
	f.n++
}

// find returns the offset of the frame that starts at pos, or false.
func (f *frameStarts) find(pos uint64) (int64, bool) {
	for i := range min(f.n, len(f.pos)) {
		if f.pos[i] == pos {
			return f.off[i], true
		}
	}
	return 0, false
}

// view is a reader's consistent snapshot of a segment.
type view struct {
	seg    *segment
	last   uint64
	size   int64
	index  []indexEntry
	recent frameStarts
}

func (s *segment) view() view {
	return view{seg: s, last: s.last, size: s.size, index: s.index, recent: s.recent}
}

// RecoveryInfo reports what Open found and repaired.
type RecoveryInfo struct {
	// Head is the last position after recovery.
	Head uint64
	// Segments is the number of segment files.
	Segments int
	// TornSegment names the segment whose tail was cut, empty when none
	// was.
	TornSegment string
	// TornOffset is the offset the torn segment was truncated to: the end of
	// its last complete frame.
	TornOffset int64
	// TornBytes is the number of bytes cut.
	TornBytes int64
	// TornReason says why the first cut byte did not start a valid frame
	// ("short frame", "frame checksum mismatch", ...). The zeros after the
	// data of a preallocated segment are its clean end, not a torn tail.
	TornReason string
	// RebuiltIndexes lists the sealed segments whose index file was missing
	// or invalid and was rebuilt by scanning the segment.
	RebuiltIndexes []string
	// Duration is how long Open took.
	Duration time.Duration
}

// Recovered reports what Open found and repaired.
func (l *Log) Recovered() RecoveryInfo { return l.recovered }

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }

// Open opens the log in dir, creating dir and an empty log if needed, and
// recovers it: sealed segments are loaded from their index files (a missing
// or invalid one is rebuilt from its segment), the active segment is
// scanned, and a torn tail is cut and reported (see Recovered). Corruption
// anywhere but the tail of the active segment makes Open fail with an error
// wrapping eventlog.ErrCorrupt rather than drop acknowledged events.
//
// Only one Log may have dir open at a time; on Linux a second Open of the
// same directory fails.
func Open(dir string, opts Options) (*Log, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	opts = opts.withDefaults()
	l := &Log{
		dir:  dir,
		opts: opts,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	if err := opts.FS.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	lock, err := opts.FS.Lock(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("open log: lock %s: %w", dir, err)
	}
	l.lock = lock
	if err := l.recover(); err != nil {
		for _, s := range l.mu.segs {
			s.f.Close()
		}
		lock.Close()
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	l.mu.grew = make(chan struct{})
	l.recovered.Head = l.mu.head
	l.recovered.Segments = len(l.mu.segs)
	l.recovered.Duration = time.Since(start)
	if l.recovered.TornSegment != "" || len(l.recovered.RebuiltIndexes) > 0 {
		opts.Logger.Warn("filelog: recovered log", "dir", dir, "head", l.mu.head,
			"torn_segment", l.recovered.TornSegment, "torn_offset", l.recovered.TornOffset,
			"torn_bytes", l.recovered.TornBytes, "torn_reason", l.recovered.TornReason,
			"rebuilt_indexes", len(l.recovered.RebuiltIndexes))
	}
	go l.run()
	return l, nil
}

// Close stops the writer after the appends already queued complete, then
// closes the files. Blocked WaitHead calls and subscriptions return
// eventlog.ErrClosed. Close is idempotent.
func (l *Log) Close() error {
	l.q.Lock()
	if l.q.closed {
		l.q.Unlock()
		<-l.done
		return nil
	}
	l.q.closed = true
	l.q.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.done

	l.mu.Lock()
	l.mu.closed = true
	close(l.mu.grew)
	segs := l.mu.segs
	l.mu.Unlock()
	var errs []error
	for _, s := range segs {
		if err := s.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", s.name, err))
		}
	}
	if err := l.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("unlock: %w", err))
	}
	return errors.Join(errs...)
}

// Head implements eventlog.Log.
func (l *Log) Head(ctx context.Context) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return 0, eventlog.ErrClosed
	}
	return l.mu.head, nil
}

// StreamVersion implements eventlog.Log.
func (l *Log) StreamVersion(ctx context.Context, stream string) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return 0, eventlog.ErrClosed
	}
	return l.mu.streams[stream], nil
}

// WaitHead implements eventlog.TailSource.
func (l *Log) WaitHead(ctx context.Context, pos uint64) error {
	for {
		l.mu.RLock()
		closed, head, grew := l.mu.closed, l.mu.head, l.mu.grew
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

// Subscribe implements eventlog.Log with eventlog.Tail.
func (l *Log) Subscribe(ctx context.Context, from uint64) (eventlog.Subscription, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return nil, eventlog.ErrClosed
	}
	return eventlog.Tail(l, from, 0), nil
}

// Append implements eventlog.Log. The batch is encoded by the caller's
// goroutine, then queued to the single writer, which gathers every queued
// append (up to Options.MaxBatchBytes) into one write and one fdatasync and
// acknowledges them together (group commit). ctx is checked before the
// batch is queued; once queued, Append waits for the outcome.
//
// After a failed write or sync every pending and later Append returns an
// error wrapping eventlog.ErrFailed: the log must be closed and reopened.
func (l *Log) Append(ctx context.Context, batch []event.Event, expect ...eventlog.Expect) (eventlog.Result, error) {
	if err := ctx.Err(); err != nil {
		return eventlog.Result{}, err
	}
	if err := eventlog.Validate(batch); err != nil {
		return eventlog.Result{}, err
	}
	r := getRequest()
	defer putRequest(r)
	enc, err := encodeBatch(r.enc[:0], batch)
	r.enc = enc
	if err != nil {
		return eventlog.Result{}, err
	}
	r.batch, r.expect = batch, expect

	l.q.Lock()
	if l.q.closed {
		l.q.Unlock()
		return eventlog.Result{}, eventlog.ErrClosed
	}
	l.q.reqs = append(l.q.reqs, r)
	l.q.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-r.done
	return r.res, r.err
}

// encodeBatch appends the events of batch to dst as frame body entries:
// uvarint length then the event codec's encoding, with Position and Time
// left zero (the frame header carries them).
func encodeBatch(dst []byte, batch []event.Event) ([]byte, error) {
	var zero [binary.MaxVarintLen64]byte
	for i := range batch {
		e := batch[i]
		e.Time = 0
		bound := event.EncodedSize(&e)
		n := uvarintLen(uint64(bound))
		at := len(dst)
		dst = append(dst, zero[:n]...)
		var err error
		dst, err = event.Append(dst, &e)
		if err != nil {
			return dst, fmt.Errorf("%w: event %d: %w", eventlog.ErrInvalid, i, err)
		}
		size := len(dst) - at - n
		if m := uvarintLen(uint64(size)); m < n {
			copy(dst[at+m:], dst[at+n:])
			dst = dst[:len(dst)-(n-m)]
			n = m
		}
		binary.PutUvarint(dst[at:at+n], uint64(size))
	}
	if len(dst) > maxFrameBody/2 {
		return dst, fmt.Errorf("%w: batch encodes to %d bytes, over %d", eventlog.ErrInvalid, len(dst), maxFrameBody/2)
	}
	return dst, nil
}

type request struct {
	batch  []event.Event
	expect []eventlog.Expect
	enc    []byte
	res    eventlog.Result
	err    error
	off    int // offset of the request's frame in the writer's buffer
	done   chan struct{}
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

func getRequest() *request { return requestPool.Get().(*request) }

func putRequest(r *request) {
	r.batch, r.expect, r.err, r.res = nil, nil, nil, eventlog.Result{}
	if cap(r.enc) > 1<<20 {
		r.enc = nil
	}
	requestPool.Put(r)
}

// logWarn reports a problem the log works around but cannot return to a
// caller.
func (l *Log) logWarn(msg string, args ...any) {
	l.opts.Logger.LogAttrs(context.Background(), slog.LevelWarn, msg, slog.Group("filelog", args...))
}
