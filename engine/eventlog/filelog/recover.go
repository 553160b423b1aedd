package filelog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
)

// recover loads the segments of l.dir into l.mu and prepares the writer.
func (l *Log) recover() error {
	fsys := l.opts.FS
	ents, err := fsys.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	var bases []uint64
	idx := make(map[uint64]bool)
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, tmpSuffix):
			// An index file whose rename never happened.
			if err := fsys.Remove(filepath.Join(l.dir, name)); err != nil {
				return fmt.Errorf("remove %s: %w", name, err)
			}
		case strings.HasSuffix(name, segSuffix):
			if b, ok := parseBase(name, segSuffix); ok {
				bases = append(bases, b)
			}
		case strings.HasSuffix(name, idxSuffix):
			if b, ok := parseBase(name, idxSuffix); ok {
				idx[b] = true
			}
		}
	}
	slices.Sort(bases)
	if len(bases) == 0 {
		l.mu.streams = make(map[string]uint64)
		s, err := l.createSegment(1)
		if err != nil {
			return err
		}
		l.mu.segs = []*segment{s}
		l.w.init(l, s, nil)
		return nil
	}
	next := bases[0]
	if next != 1 {
		return fmt.Errorf("%w: first segment starts at %d, not 1", eventlog.ErrCorrupt, next)
	}
	sets := make([]streamSet, len(bases))
	most := 0
	for i, base := range bases {
		if base != next {
			return fmt.Errorf("%w: segment %s starts at %d, previous ends at %d", eventlog.ErrCorrupt, segName(base), base, next-1)
		}
		active := i == len(bases)-1
		s, streams, err := l.loadSegment(base, active, idx[base])
		if err != nil {
			return err
		}
		l.mu.segs = append(l.mu.segs, s)
		if active {
			l.w.init(l, s, streams.m)
		}
		sets[i], most = streams, max(most, streams.len())
		l.mu.head = s.last
		next = s.last + 1
	}
	// Each stream's version is its position in the newest segment that
	// has it: merge from the newest, reading an older segment's entry
	// only for a stream not met yet.
	l.mu.streams = make(map[string]uint64, most)
	for i := len(sets) - 1; i >= 0; i-- {
		sets[i].mergeOlder(l.mu.streams)
	}
	return nil
}

// loadSegment opens one segment. A sealed one comes from its index file
// when that is valid, else from a strict scan (any bad frame is corruption),
// after which its index file is rewritten. The active one is always scanned,
// and its torn tail cut.
func (l *Log) loadSegment(base uint64, active, hasIdx bool) (*segment, streamSet, error) {
	fsys := l.opts.FS
	name := segName(base)
	path := filepath.Join(l.dir, name)
	flag := os.O_RDONLY
	if active {
		flag = os.O_RDWR
	}
	f, err := fsys.OpenFile(path, flag, 0)
	if err != nil {
		return nil, streamSet{}, fmt.Errorf("open segment: %w", err)
	}
	s := &segment{base: base, name: name, f: f, last: base - 1}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, streamSet{}, fmt.Errorf("stat %s: %w", name, err)
	}
	size := fi.Size()

	if !active && hasIdx {
		b, err := readFile(fsys, filepath.Join(l.dir, idxName(base)))
		if err == nil {
			var m *segMeta
			if m, err = decodeIndex(b, base, size); err == nil {
				s.last, s.lastTime, s.size, s.index = m.last, m.lastTime, m.size, m.index
				return s, m.table, nil
			}
		}
		l.logWarn("filelog: invalid index file, rebuilding", "segment", name, "err", err)
	}

	hdr := make([]byte, segHeaderSize)
	n, err := f.ReadAt(hdr, 0)
	if err != nil && err != io.EOF {
		f.Close()
		return nil, streamSet{}, fmt.Errorf("read %s: %w", name, err)
	}
	if herr := checkSegHeader(hdr[:n], base); herr != nil {
		// A segment is created with its header synced before any frame is
		// written to it, so a short or unsynced header can only be the
		// remains of a crash during creation of the last segment.
		if !active || size > segHeaderSize {
			f.Close()
			return nil, streamSet{}, fmt.Errorf("%w: %s: %v", eventlog.ErrCorrupt, name, herr)
		}
		if err := l.rewriteHeader(f, base); err != nil {
			f.Close()
			return nil, streamSet{}, err
		}
		l.recovered.TornSegment, l.recovered.TornOffset = name, 0
		l.recovered.TornBytes, l.recovered.TornReason = size, herr.Error()
		s.size = segHeaderSize
		return s, streamSet{m: map[string]uint64{}}, nil
	}

	sc, err := scanSegment(f, base, size, int64(l.opts.IndexInterval))
	if err != nil {
		f.Close()
		return nil, streamSet{}, fmt.Errorf("scan %s: %w", name, err)
	}
	s.last, s.lastTime, s.size, s.index = sc.last, sc.lastTime, sc.end, sc.index
	if sc.torn != "" && !active {
		f.Close()
		return nil, streamSet{}, fmt.Errorf("%w: sealed segment %s at offset %d: %s", eventlog.ErrCorrupt, name, sc.end, sc.torn)
	}
	if active {
		// Cut everything after the data, torn frames and the zeros of the
		// preallocation alike, so no stale byte there can ever be read as
		// a frame, then preallocate again.
		if size > sc.end {
			if err := f.Truncate(sc.end); err != nil {
				f.Close()
				return nil, streamSet{}, fmt.Errorf("truncate %s: %w", name, err)
			}
		}
		l.allocate(f, name)
		if !l.opts.NoSync {
			if err := f.Sync(); err != nil {
				f.Close()
				return nil, streamSet{}, fmt.Errorf("sync %s: %w", name, err)
			}
		}
		if sc.torn != "" {
			l.recovered.TornSegment, l.recovered.TornOffset = name, sc.end
			l.recovered.TornBytes, l.recovered.TornReason = size-sc.end, sc.torn
		}
	} else if size > sc.end {
		// A sealed segment still preallocated: the crash came between
		// sealing it and writing its index file.
		if err := l.truncateSealed(name, sc.end); err != nil {
			f.Close()
			return nil, streamSet{}, err
		}
	}
	if !active {
		l.recovered.RebuiltIndexes = append(l.recovered.RebuiltIndexes, name)
		m := &segMeta{base: base, size: s.size, last: s.last, lastTime: s.lastTime, index: s.index, streams: sc.streams}
		if err := l.writeIndex(m); err != nil {
			// The segment is intact; the next Open rebuilds again.
			l.logWarn("filelog: write index file", "segment", name, "err", err)
		}
	}
	return s, streamSet{m: sc.streams}, nil
}

// truncateSealed cuts a sealed segment to the end of its data and syncs it.
func (l *Log) truncateSealed(name string, size int64) error {
	f, err := l.opts.FS.OpenFile(filepath.Join(l.dir, name), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	err = f.Truncate(size)
	if err == nil && !l.opts.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("truncate %s: %w", name, err)
	}
	return nil
}

// allocate preallocates a segment file to Options.SegmentSize where the
// file system can. It is only an optimization: a failure is logged.
func (l *Log) allocate(f File, name string) {
	a, ok := f.(Allocator)
	if !ok || l.opts.noAllocate {
		return
	}
	if err := a.Allocate(l.opts.SegmentSize); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		l.logWarn("filelog: preallocate segment", "segment", name, "err", err)
	}
}

func (l *Log) rewriteHeader(f File, base uint64) error {
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("truncate %s: %w", segName(base), err)
	}
	if _, err := f.WriteAt(segHeader(base), 0); err != nil {
		return fmt.Errorf("write %s: %w", segName(base), err)
	}
	l.allocate(f, segName(base))
	if !l.opts.NoSync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", segName(base), err)
		}
	}
	return nil
}

func readFile(fsys FS, path string) ([]byte, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > 1<<30 {
		return nil, errors.New("file too large")
	}
	b := make([]byte, fi.Size())
	n, err := f.ReadAt(b, 0)
	if err != nil && !(err == io.EOF && n == len(b)) {
		return nil, err
	}
	return b, nil
}

// scanResult is what a scan of a segment found.
type scanResult struct {
	last     uint64
	lastTime int64
	end      int64 // end of the last valid frame
	index    []indexEntry
	streams  map[string]uint64
	torn     string // why the bytes at end are not a frame; "" when end is the end of the data
}

const scanChunk = 4 << 20

// scanSegment reads a segment from its first frame to its end (size),
// verifying each frame and decoding each event. It stops at the first bytes
// that are not a valid frame and says why in torn; a frame that is valid but
// out of sequence, or an event that does not decode, is an error.
func scanSegment(f File, base uint64, size int64, interval int64) (scanResult, error) {
	sc := scanResult{last: base - 1, end: segHeaderSize, streams: make(map[string]uint64)}
	buf := make([]byte, 0, scanChunk)
	bufOff := int64(segHeaderSize) // file offset of buf[0]
	var lastEntry int64 = -1
	var ev event.Event
	for {
		p := int(sc.end - bufOff)
		fr, ferr := parseFrame(buf[p:])
		if ferr != nil && ferr.need > 0 && bufOff+int64(len(buf)) < size {
			// Refill from sc.end with at least the needed bytes.
			want := max(scanChunk, ferr.need)
			if int64(want) > size-sc.end {
				want = int(size - sc.end)
			}
			nb := buf[:0]
			if cap(nb) < want {
				nb = make([]byte, 0, want)
			}
			nb = nb[:want]
			n, err := f.ReadAt(nb, sc.end)
			if err != nil && !(err == io.EOF && n == want) {
				return sc, fmt.Errorf("read at %d: %w", sc.end, err)
			}
			buf, bufOff = nb, sc.end
			continue
		}
		if ferr != nil {
			if sc.end == size || zeroHeader(buf[p:]) {
				// The end of the file, or of the data in a preallocated
				// segment: its unwritten rest reads as zeros.
				return sc, nil
			}
			sc.torn = ferr.reason
			return sc, nil
		}
		if fr.first != sc.last+1 {
			return sc, fmt.Errorf("%w: frame at offset %d holds position %d, want %d", eventlog.ErrCorrupt, sc.end, fr.first, sc.last+1)
		}
		if fr.time < sc.lastTime {
			return sc, fmt.Errorf("%w: frame at offset %d has time %d before %d", eventlog.ErrCorrupt, sc.end, fr.time, sc.lastTime)
		}
		body, err := newFrameBody(&fr)
		if err != nil {
			return sc, fmt.Errorf("%w: frame at offset %d: %v", eventlog.ErrCorrupt, sc.end, err)
		}
		for i := 0; i < fr.count; i++ {
			_, enc, err := body.next()
			if err != nil {
				return sc, fmt.Errorf("%w: frame at offset %d: %v", eventlog.ErrCorrupt, sc.end, err)
			}
			if err := decodeEvent(enc, &ev, fr.first+uint64(i), fr.time); err != nil {
				return sc, err
			}
			if _, ok := sc.streams[ev.Stream]; ok {
				sc.streams[ev.Stream] = fr.first + uint64(i)
			} else {
				sc.streams[strings.Clone(ev.Stream)] = fr.first + uint64(i)
			}
		}
		if lastEntry < 0 || sc.end-lastEntry >= interval {
			sc.index = append(sc.index, indexEntry{pos: fr.first, time: fr.time, off: sc.end})
			lastEntry = sc.end
		}
		sc.last, sc.lastTime = fr.last(), fr.time
		sc.end += int64(fr.size)
	}
}

// zeroHeader reports whether b starts with a frame header of zeros, or is a
// shorter run of zeros: where the data of a preallocated segment ends.
func zeroHeader(b []byte) bool {
	for _, c := range b[:min(len(b), frameHeaderSize)] {
		if c != 0 {
			return false
		}
	}
	return true
}

// decodeEvent decodes one event encoding of a frame at position pos.
func decodeEvent(enc []byte, e *event.Event, pos uint64, t int64) error {
	n, err := event.Decode(enc, e)
	if err != nil {
		if errors.Is(err, event.ErrVersion) {
			return fmt.Errorf("decode event %d: %w", pos, err)
		}
		return fmt.Errorf("%w: decode event %d: %w", eventlog.ErrCorrupt, pos, err)
	}
	if n != len(enc) {
		return fmt.Errorf("%w: event %d has %d trailing bytes", eventlog.ErrCorrupt, pos, len(enc)-n)
	}
	e.Position, e.Time = pos, t
	return nil
}

// createSegment creates the segment starting at base with its header, and
// makes both durable before any frame is written to it.
func (l *Log) createSegment(base uint64) (*segment, error) {
	name := segName(base)
	fsys := l.opts.FS
	f, err := fsys.OpenFile(filepath.Join(l.dir, name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if _, err := f.WriteAt(segHeader(base), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	l.allocate(f, name)
	if !l.opts.NoSync {
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("sync %s: %w", name, err)
		}
		if err := fsys.SyncDir(l.dir); err != nil {
			f.Close()
			return nil, fmt.Errorf("sync dir: %w", err)
		}
	}
	return &segment{base: base, name: name, f: f, last: base - 1, size: segHeaderSize}, nil
}

// writeIndex writes a sealed segment's index file atomically: to a
// temporary file, synced, renamed over the final name, directory synced.
func (l *Log) writeIndex(m *segMeta) error {
	fsys := l.opts.FS
	final := filepath.Join(l.dir, idxName(m.base))
	tmp := final + tmpSuffix
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(encodeIndex(m), 0)
	if err == nil && !l.opts.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, final)
	}
	if err != nil {
		fsys.Remove(tmp)
		return err
	}
	if !l.opts.NoSync {
		return fsys.SyncDir(l.dir)
	}
	return nil
}
