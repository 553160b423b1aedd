package filelog

import (
	"fmt"
	"strings"

	"github.com/twinlog/twinlog/engine/eventlog"
)

// writer is the state of the single writer goroutine. Only that goroutine
// touches it (and Open, before starting it).
type writer struct {
	l         *Log
	active    *segment
	size      int64  // bytes written to the active segment
	next      uint64 // next position to assign
	lastT     int64
	lastEntry int64 // offset of the active segment's last index entry, -1 if none

	segStreams map[string]uint64 // stream -> last position, in the active segment
	overlay    map[string]uint64 // stream -> last position, in the unsynced buffer
	buf        []byte
	pend       []*request // requests whose frames are in buf
	group      []*request
	rejected   []*request // conflicting requests of the group, acknowledged last
	failed     error      // set on a failed write or sync; final
}

func (w *writer) init(l *Log, s *segment, streams map[string]uint64) {
	w.l = l
	w.active = s
	w.size = s.size
	w.next = s.last + 1
	w.lastT = s.lastTime
	w.lastEntry = -1
	if n := len(s.index); n > 0 {
		w.lastEntry = s.index[n-1].off
	}
	if streams == nil {
		streams = make(map[string]uint64)
	}
	w.segStreams = streams
	w.overlay = make(map[string]uint64)
	// The previous segments' last time bounds the next stamp too.
	for _, p := range l.mu.segs {
		w.lastT = max(w.lastT, p.lastTime)
	}
}

// run is the writer goroutine: it takes queued appends in groups and
// commits each group with one write and one sync.
func (l *Log) run() {
	defer close(l.done)
	w := &l.w
	for {
		l.q.Lock()
		for len(l.q.reqs) == 0 && !l.q.closed {
			l.q.Unlock()
			<-l.wake
			l.q.Lock()
		}
		if len(l.q.reqs) == 0 {
			l.q.Unlock()
			return
		}
		// Take queued requests up to the byte budget, at least one.
		n, bytes := 0, 0
		for n < len(l.q.reqs) && (n == 0 || bytes+len(l.q.reqs[n].enc) <= l.opts.MaxBatchBytes) {
			bytes += len(l.q.reqs[n].enc)
			n++
		}
		w.group = append(w.group[:0], l.q.reqs[:n]...)
		rest := copy(l.q.reqs, l.q.reqs[n:])
		clear(l.q.reqs[rest:])
		l.q.reqs = l.q.reqs[:rest]
		l.q.Unlock()

		w.commit(w.group)
		clear(w.group)
	}
}

func ack(r *request) { r.done <- struct{}{} }

// commit writes one group: it checks each request's expectations in order
// (a failed one gets a ConflictError and writes nothing), frames the others
// into one buffer, writes it, syncs once and acknowledges.
func (w *writer) commit(group []*request) {
	if w.failed != nil {
		for _, r := range group {
			r.err = w.failed
			ack(r)
		}
		return
	}
	l := w.l
	t := l.opts.Now().UnixNano()
	if t < w.lastT {
		t = w.lastT
	}
	w.lastT = t
	w.buf = w.buf[:0]
	w.pend = w.pend[:0]
	for i, r := range group {
		if err := w.check(r); err != nil {
			// Acknowledged after the group: the versions it lost against
			// may still fail to become durable.
			r.err = err
			w.rejected = append(w.rejected, r)
			continue
		}
		bound := int64(frameHeaderSize + len(r.batch)*10 + len(r.enc))
		if used := w.size + int64(len(w.buf)); used+bound > l.opts.SegmentSize && used > segHeaderSize {
			if err := w.flush(t); err == nil {
				err = w.roll()
			}
			if w.failed != nil {
				for _, r := range group[i:] {
					r.err = w.failed
					ack(r)
				}
				break
			}
		}
		w.frame(r, t)
	}
	w.flush(t)
	for _, r := range w.rejected {
		ack(r)
	}
	clear(w.rejected)
	w.rejected = w.rejected[:0]
}

// check checks r's expectations against the durable versions and those of
// requests earlier in the buffer.
func (w *writer) check(r *request) error {
	for _, x := range r.expect {
		v, ok := w.overlay[x.Stream]
		if !ok {
			v = w.l.mu.streams[x.Stream]
		}
		if v != x.Version {
			return &eventlog.ConflictError{Stream: x.Stream, Expected: x.Version, Actual: v}
		}
	}
	return nil
}

// frame appends r's frame to the buffer and assigns its positions.
func (w *writer) frame(r *request, t int64) {
	first := w.next
	r.off = len(w.buf)
	w.buf = beginFrame(w.buf)
	for i := range r.batch {
		s := r.batch[i].Stream
		pos := first + uint64(i)
		prev, ok := w.overlay[s]
		if !ok {
			prev = w.l.mu.streams[s]
		}
		var back uint64
		if prev != 0 {
			back = pos - prev
		}
		w.buf = appendUvarint(w.buf, back)
		w.overlay[s] = pos
	}
	w.buf = append(w.buf, r.enc...)
	finishFrame(w.buf, r.off, first, t, len(r.batch))
	n := uint64(len(r.batch))
	r.res = eventlog.Result{First: first, Last: first + n - 1, Time: t}
	w.next += n
	w.pend = append(w.pend, r)
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// flush writes the buffer to the active segment, syncs it, publishes the
// new head and acknowledges the pending requests. On failure it fails the
// log and the pending requests.
func (w *writer) flush(t int64) error {
	if len(w.pend) == 0 {
		return nil
	}
	l := w.l
	s := w.active
	err := w.write()
	if err != nil {
		w.failed = err
		for _, r := range w.pend {
			r.res, r.err = eventlog.Result{}, err
			ack(r)
		}
		w.pend = w.pend[:0]
		w.buf = w.buf[:0]
		clear(w.overlay)
		return err
	}
	l.mu.Lock()
	for _, r := range w.pend {
		off := w.size + int64(r.off)
		if w.lastEntry < 0 || off-w.lastEntry >= int64(l.opts.IndexInterval) {
			s.index = append(s.index, indexEntry{pos: r.res.First, time: t, off: off})
			w.lastEntry = off
		}
		s.recent.add(r.res.First, off)
	}
	for k, v := range w.overlay {
		if _, ok := l.mu.streams[k]; !ok {
			k = strings.Clone(k)
		}
		l.mu.streams[k] = v
		w.segStreams[k] = v
	}
	w.size += int64(len(w.buf))
	s.size = w.size
	s.last = w.next - 1
	s.lastTime = t
	l.mu.head = w.next - 1
	close(l.mu.grew)
	l.mu.grew = make(chan struct{})
	l.mu.Unlock()

	for _, r := range w.pend {
		ack(r)
	}
	w.pend = w.pend[:0]
	w.buf = w.buf[:0]
	clear(w.overlay)
	return nil
}

// write writes and syncs the buffer. A failed or short write is truncated
// back where possible; either way the log is failed, since after a failed
// write or sync the page cache's state is unknown.
func (w *writer) write() error {
	s := w.active
	n, err := s.f.WriteAt(w.buf, w.size)
	if err == nil && n < len(w.buf) {
		err = fmt.Errorf("short write of %d of %d bytes", n, len(w.buf))
	}
	if err != nil {
		if terr := s.f.Truncate(w.size); terr != nil {
			err = fmt.Errorf("%w (truncate back: %v)", err, terr)
		}
		return fmt.Errorf("%w: write %s at %d: %w", eventlog.ErrFailed, s.name, w.size, err)
	}
	if w.l.opts.NoSync {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("%w: sync %s: %w", eventlog.ErrFailed, s.name, err)
	}
	return nil
}

// roll seals the active segment, writing its index file, and starts the
// next one. A failed index write is only reported: Open rebuilds it.
func (w *writer) roll() error {
	l := w.l
	s := w.active
	// Cut the preallocated rest, durably, before the index file records
	// the size.
	err := s.f.Truncate(w.size)
	if err == nil && !l.opts.NoSync {
		err = s.f.Sync()
	}
	if err != nil {
		w.failed = fmt.Errorf("%w: seal %s: %w", eventlog.ErrFailed, s.name, err)
		return w.failed
	}
	m := &segMeta{base: s.base, size: w.size, last: w.next - 1, lastTime: s.lastTime, index: s.index, streams: w.segStreams}
	if err := l.writeIndex(m); err != nil {
		l.logWarn("filelog: write index file", "segment", s.name, "err", err)
	}
	ns, err := l.createSegment(w.next)
	if err != nil {
		w.failed = fmt.Errorf("%w: %w", eventlog.ErrFailed, err)
		return w.failed
	}
	l.mu.Lock()
	l.mu.segs = append(l.mu.segs, ns)
	l.mu.Unlock()
	w.active = ns
	w.size = ns.size
	w.lastEntry = -1
	w.segStreams = make(map[string]uint64)
	return nil
}
