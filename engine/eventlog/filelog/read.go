package filelog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
)

// Read sizes: a read starts with about the distance between index entries
// and grows to readChunkMax per I/O.
const (
	readChunkMin = 64 << 10
	readChunkMax = 4 << 20
)

// findSeg returns the index of the segment holding pos in segs.
func findSeg[T any](segs []T, base func(T) uint64, pos uint64) int {
	i := sort.Search(len(segs), func(i int) bool { return base(segs[i]) > pos })
	return max(i-1, 0)
}

// entryFor returns the offset of the index entry at or before pos.
func (v *view) entryFor(pos uint64) (int, int64) {
	i := sort.Search(len(v.index), func(i int) bool { return v.index[i].pos > pos }) - 1
	if i < 0 {
		return 0, segHeaderSize
	}
	return i, v.index[i].off
}

// snapshot returns views of the segments from the one holding pos up to the
// one holding pos+n-1 (n <= 0: to the end).
func (l *Log) snapshotLocked(pos uint64, n int) []view {
	segs := l.mu.segs
	i := findSeg(segs, func(s *segment) uint64 { return s.base }, pos)
	var out []view
	for ; i < len(segs); i++ {
		if n > 0 && len(out) > 0 && segs[i].base >= pos+uint64(n) {
			break
		}
		out = append(out, segs[i].view())
	}
	return out
}

// frameReader reads verified frames of one segment forward from an offset,
// with large reads. Every read goes to a fresh buffer, so the events decoded
// from it may alias it.
type frameReader struct {
	v      *view
	off    int64 // file offset of the next frame
	buf    []byte
	bufOff int64 // file offset of buf[0]
}

// next returns the next frame, or io.EOF at the end of the durable part of
// the segment. hint is how many bytes the caller expects to want.
func (r *frameReader) next(hint int) (frame, int64, error) {
	if r.off >= r.v.size {
		return frame{}, 0, io.EOF
	}
	need := 0 // bytes of the frame at r.off known to be required
	for {
		p := r.off - r.bufOff
		if p >= 0 && p <= int64(len(r.buf)) {
			fr, ferr := parseFrame(r.buf[p:])
			if ferr == nil {
				off := r.off
				r.off += int64(fr.size)
				return fr, off, nil
			}
			if ferr.need == 0 || r.bufOff+int64(len(r.buf)) >= r.v.size || ferr.need <= len(r.buf)-int(p) {
				return frame{}, 0, fmt.Errorf("%w: %s at offset %d: %s", eventlog.ErrCorrupt, r.v.seg.name, r.off, ferr.reason)
			}
			need = ferr.need
		}
		// Read at least what the frame needs (a frame may be larger than
		// a chunk), at most to the end of the durable part.
		n := int64(min(max(hint, readChunkMin), readChunkMax))
		n = max(n, int64(need))
		if rem := r.v.size - r.off; n > rem {
			n = rem
		}
		buf := make([]byte, n)
		m, err := r.v.seg.f.ReadAt(buf, r.off)
		if err != nil && !(err == io.EOF && m == len(buf)) {
			if errors.Is(err, os.ErrClosed) {
				return frame{}, 0, eventlog.ErrClosed
			}
			return frame{}, 0, fmt.Errorf("read %s at %d: %w", r.v.seg.name, r.off, err)
		}
		r.buf, r.bufOff = buf, r.off
	}
}

// Read implements eventlog.Log. It finds the frame holding from through the
// sparse index, then reads forward in large chunks, verifying every frame's
// checksum. The events' payloads alias a buffer allocated for this call
// only.
func (l *Log) Read(ctx context.Context, from uint64, max int) ([]event.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return nil, eventlog.ErrClosed
	}
	head := l.mu.head
	if from == 0 || from > head+1 {
		l.mu.RUnlock()
		return nil, fmt.Errorf("%w: %d with head %d", eventlog.ErrOutOfRange, from, head)
	}
	if from == head+1 {
		l.mu.RUnlock()
		return nil, nil
	}
	views := l.snapshotLocked(from, max)
	l.mu.RUnlock()

	want := int(head - from + 1)
	if max > 0 && max < want {
		want = max
	}
	out := make([]event.Event, 0, want)
	pos := from
	for vi := range views {
		v := &views[vi]
		if pos > v.last {
			continue
		}
		off, ok := v.recent.find(pos)
		if !ok {
			_, off = v.entryFor(pos)
		}
		r := frameReader{v: v, off: off}
		perEvent := 1 + int((v.size-segHeaderSize)/int64(v.last-v.seg.base+1))
		for len(out) < want {
			fr, _, err := r.next((want - len(out)) * perEvent * 9 / 8)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("read %d: %w", pos, err)
			}
			if fr.last() < pos {
				continue
			}
			if fr.first > pos {
				return nil, fmt.Errorf("%w: %s: frame at %d, want %d", eventlog.ErrCorrupt, v.seg.name, fr.first, pos)
			}
			body, err := newFrameBody(&fr)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: frame %d: %v", eventlog.ErrCorrupt, v.seg.name, fr.first, err)
			}
			for i := 0; i < fr.count && len(out) < want; i++ {
				p := fr.first + uint64(i)
				if p < pos {
					if err := body.skip(); err != nil {
						return nil, fmt.Errorf("%w: %s: frame %d: %v", eventlog.ErrCorrupt, v.seg.name, fr.first, err)
					}
					continue
				}
				_, enc, err := body.next()
				if err != nil {
					return nil, fmt.Errorf("%w: %s: frame %d: %v", eventlog.ErrCorrupt, v.seg.name, fr.first, err)
				}
				out = append(out, event.Event{})
				if err := decodeEvent(enc, &out[len(out)-1], p, fr.time); err != nil {
					return nil, err
				}
				pos = p + 1
			}
		}
		if len(out) >= want {
			break
		}
	}
	return out, nil
}

// SeekTime implements eventlog.Log: a binary search over the sparse index,
// then a scan of frame headers.
func (l *Log) SeekTime(ctx context.Context, t time.Time) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	ns := t.UnixNano()
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return 0, eventlog.ErrClosed
	}
	// The last segment whose first frame is before t.
	segs := l.mu.segs
	i := sort.Search(len(segs), func(i int) bool {
		s := segs[i]
		return len(s.index) == 0 || s.index[0].time >= ns
	}) - 1
	if i < 0 {
		l.mu.RUnlock()
		return 1, nil
	}
	v := segs[i].view()
	l.mu.RUnlock()

	j := sort.Search(len(v.index), func(j int) bool { return v.index[j].time >= ns }) - 1
	r := frameReader{v: &v, off: v.index[j].off}
	for {
		fr, _, err := r.next(readChunkMin)
		if err == io.EOF {
			// Every event of this segment is before t; the next segment's
			// first is not (or there is none).
			return v.last + 1, nil
		}
		if err != nil {
			return 0, fmt.Errorf("seek time: %w", err)
		}
		if fr.time >= ns {
			return fr.first, nil
		}
	}
}

// ReadStream implements eventlog.Log. It walks the stream backwards from its
// last event along the per-event back-pointers (each event records the
// position of the previous event of its stream), collecting the positions at
// or after from, then reads those events. The cost is proportional to the
// number of the stream's events at or after from, and each sparse-index
// interval holding one is read once. Payloads are copied, so they do not pin
// the read buffers.
func (l *Log) ReadStream(ctx context.Context, stream string, from uint64, max int) ([]event.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return nil, eventlog.ErrClosed
	}
	p := l.mu.streams[stream]
	var views []view
	if p != 0 && p >= from {
		views = make([]view, len(l.mu.segs))
		for i, s := range l.mu.segs {
			views[i] = s.view()
		}
	}
	l.mu.RUnlock()
	if len(views) == 0 {
		return nil, nil
	}

	c := cursor{views: views}
	var ps []uint64
	for p != 0 && p >= from {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ps = append(ps, p)
		back, _, err := c.event(p, false)
		if err != nil {
			return nil, fmt.Errorf("read stream %q: %w", stream, err)
		}
		if back == 0 || back >= p {
			break
		}
		p -= back
	}
	slices.Reverse(ps)
	if max > 0 && len(ps) > max {
		ps = ps[:max]
	}
	out := make([]event.Event, len(ps))
	for i, p := range ps {
		_, enc, err := c.event(p, true)
		if err != nil {
			return nil, fmt.Errorf("read stream %q: %w", stream, err)
		}
		e := &out[i]
		if err := decodeEvent(enc, e, p, c.frameTime); err != nil {
			return nil, fmt.Errorf("read stream %q: %w", stream, err)
		}
		if e.Stream != stream {
			return nil, fmt.Errorf("%w: back-pointer of stream %q leads to event %d of stream %q", eventlog.ErrCorrupt, stream, p, e.Stream)
		}
		if e.Payload != nil {
			e.Payload = slices.Clone(e.Payload)
		}
	}
	return out, nil
}

// cursor finds events by position for random access: it reads the whole
// sparse-index interval holding a position and keeps the last one read.
type cursor struct {
	views []view

	seg, entry int     // the cached interval
	frames     []frame // its verified frames
	loaded     bool

	frameTime int64 // time of the frame of the last event returned
}

// event returns the back-pointer and encoding of the event at pos.
func (c *cursor) event(pos uint64, wantEnc bool) (uint64, []byte, error) {
	si := findSeg(c.views, func(v view) uint64 { return v.seg.base }, pos)
	v := &c.views[si]
	if pos < v.seg.base || pos > v.last {
		return 0, nil, fmt.Errorf("%w: position %d not in the log", eventlog.ErrCorrupt, pos)
	}
	ei, off := v.entryFor(pos)
	if !c.loaded || c.seg != si || c.entry != ei {
		end := v.size
		if ei+1 < len(v.index) {
			end = v.index[ei+1].off
		}
		r := frameReader{v: v, off: off}
		c.frames = c.frames[:0]
		for r.off < end {
			fr, _, err := r.next(int(end - r.off))
			if err != nil {
				if err == io.EOF {
					break
				}
				c.loaded = false
				return 0, nil, err
			}
			c.frames = append(c.frames, fr)
		}
		c.seg, c.entry, c.loaded = si, ei, true
	}
	k := sort.Search(len(c.frames), func(k int) bool { return c.frames[k].last() >= pos })
	if k == len(c.frames) || c.frames[k].first > pos {
		return 0, nil, fmt.Errorf("%w: %s: no frame holds position %d", eventlog.ErrCorrupt, v.seg.name, pos)
	}
	fr := &c.frames[k]
	body, err := newFrameBody(fr)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %s: frame %d: %v", eventlog.ErrCorrupt, v.seg.name, fr.first, err)
	}
	for q := fr.first; ; q++ {
		back, enc, err := body.next()
		if err != nil {
			return 0, nil, fmt.Errorf("%w: %s: frame %d: %v", eventlog.ErrCorrupt, v.seg.name, fr.first, err)
		}
		if q == pos {
			c.frameTime = fr.time
			return back, enc, nil
		}
	}
}
