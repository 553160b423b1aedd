package filelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// On-disk constants; doc.go describes the layout.
const (
	segMagic      = "TWLGSEG1"
	idxMagic      = "TWLGIDX1"
	formatVersion = 1

	segHeaderSize   = 32
	frameHeaderSize = 28
	idxHeaderSize   = 64
	idxEntrySize    = 24

	// maxFrameBody bounds a frame's body so a corrupt length cannot make a
	// reader allocate without bound.
	maxFrameBody = 1 << 30

	segSuffix = ".seg"
	idxSuffix = ".idx"
	tmpSuffix = ".tmp"
	lockName  = "LOCK"
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	le         = binary.LittleEndian
)

func segName(base uint64) string { return fmt.Sprintf("%020d%s", base, segSuffix) }
func idxName(base uint64) string { return fmt.Sprintf("%020d%s", base, idxSuffix) }

// parseBase returns the base position named by a segment or index file name.
func parseBase(name, suffix string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, suffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil && v > 0
}

func segHeader(base uint64) []byte {
	b := make([]byte, segHeaderSize)
	copy(b, segMagic)
	le.PutUint32(b[8:], formatVersion)
	le.PutUint64(b[16:], base)
	le.PutUint32(b[28:], crc32.Checksum(b[:28], castagnoli))
	return b
}

func checkSegHeader(b []byte, base uint64) error {
	if len(b) < segHeaderSize {
		return errors.New("short segment header")
	}
	if string(b[:8]) != segMagic {
		return errors.New("bad segment magic")
	}
	if crc32.Checksum(b[:28], castagnoli) != le.Uint32(b[28:]) {
		return errors.New("segment header checksum mismatch")
	}
	if v := le.Uint32(b[8:]); v != formatVersion {
		return fmt.Errorf("segment format version %d not supported", v)
	}
	if got := le.Uint64(b[16:]); got != base {
		return fmt.Errorf("segment header names base %d, file name %d", got, base)
	}
	return nil
}

// frame is one parsed, checksum-verified frame: the events of one append.
type frame struct {
	first uint64 // position of the first event
	time  int64  // log time of every event of the frame
	count int    // number of events
	body  []byte // back-pointers then length-prefixed event encodings
	size  int    // frameHeaderSize + len(body)
}

func (f *frame) last() uint64 { return f.first + uint64(f.count) - 1 }

// frameError says why bytes are not a frame. need > 0 means the bytes were
// only a prefix of what may be a valid frame of that total length.
type frameError struct {
	reason string
	need   int
}

func (e *frameError) Error() string { return e.reason }

// parseFrame parses and verifies the frame at the start of b.
func parseFrame(b []byte) (frame, *frameError) {
	if len(b) < frameHeaderSize {
		return frame{}, &frameError{reason: "short frame header", need: frameHeaderSize}
	}
	n := le.Uint32(b[0:])
	sum := le.Uint32(b[4:])
	if n == 0 && sum == 0 {
		return frame{}, &frameError{reason: "zero fill"}
	}
	if n > maxFrameBody {
		return frame{}, &frameError{reason: fmt.Sprintf("frame length %d over limit", n)}
	}
	size := frameHeaderSize + int(n)
	if len(b) < size {
		return frame{}, &frameError{reason: "short frame", need: size}
	}
	c := crc32.Update(crc32.Checksum(b[0:4], castagnoli), castagnoli, b[8:size])
	if c != sum {
		return frame{}, &frameError{reason: "frame checksum mismatch"}
	}
	f := frame{
		first: le.Uint64(b[8:]),
		time:  int64(le.Uint64(b[16:])),
		count: int(le.Uint32(b[24:])),
		body:  b[frameHeaderSize:size:size],
		size:  size,
	}
	if f.count == 0 || f.count > int(n) || f.first == 0 || f.time < 0 {
		return frame{}, &frameError{reason: "malformed frame header"}
	}
	return f, nil
}

// beginFrame appends a frame header placeholder to dst; finishFrame fills it
// in once the body has been appended after it.
func beginFrame(dst []byte) []byte {
	var h [frameHeaderSize]byte
	return append(dst, h[:]...)
}

func finishFrame(dst []byte, start int, first uint64, t int64, count int) {
	h := dst[start:]
	le.PutUint32(h[0:], uint32(len(h)-frameHeaderSize))
	le.PutUint64(h[8:], first)
	le.PutUint64(h[16:], uint64(t))
	le.PutUint32(h[24:], uint32(count))
	le.PutUint32(h[4:], crc32.Update(crc32.Checksum(h[0:4], castagnoli), castagnoli, h[8:]))
}

// frameBody iterates the events of a frame body: count uvarint
// back-pointers, then count (uvarint length, encoding) pairs.
type frameBody struct {
	backs []byte // remaining back-pointer bytes
	encs  []byte // remaining event bytes
	left  int
}

var errBody = errors.New("malformed frame body")

func newFrameBody(f *frame) (frameBody, error) {
	b := f.body
	i := 0
	for k := 0; k < f.count; k++ {
		for {
			if i >= len(b) {
				return frameBody{}, errBody
			}
			c := b[i]
			i++
			if c < 0x80 {
				break
			}
		}
	}
	return frameBody{backs: b[:i], encs: b[i:], left: f.count}, nil
}

// next returns the next event's back-pointer delta and encoding.
func (fb *frameBody) next() (back uint64, enc []byte, err error) {
	if fb.left == 0 {
		return 0, nil, errBody
	}
	back, n := binary.Uvarint(fb.backs)
	if n <= 0 {
		return 0, nil, errBody
	}
	fb.backs = fb.backs[n:]
	l, n := binary.Uvarint(fb.encs)
	if n <= 0 || l > uint64(len(fb.encs)-n) {
		return 0, nil, errBody
	}
	enc = fb.encs[n : n+int(l) : n+int(l)]
	fb.encs = fb.encs[n+int(l):]
	fb.left--
	if fb.left == 0 && len(fb.encs) != 0 {
		return 0, nil, errBody
	}
	return back, enc, nil
}

// skip skips the next event without returning it.
func (fb *frameBody) skip() error {
	_, _, err := fb.next()
	return err
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// indexEntry is one entry of the sparse index: the frame starting at off
// holds position pos, stamped time.
type indexEntry struct {
	pos  uint64
	time int64
	off  int64
}

// segMeta is what an index file records about a sealed segment.
type segMeta struct {
	base     uint64
	size     int64 // bytes of the segment file: header plus frames
	last     uint64
	lastTime int64
	index    []indexEntry
	streams  map[string]uint64 // stream -> its last position in this segment; written by encodeIndex
	// table is the stream table of a decoded index file (checked, not
	// yet read into a map: see streamSet).
	table streamSet
}

// streamSet is the streams of one segment with their last positions in it:
// a map (a scanned or the active segment), or the stream table of its index
// file, read only when merged (Open reads each stream's newest position
// from the newest segment that has it, and skips its older ones).
type streamSet struct {
	m     map[string]uint64
	table []byte // entries as in an index file, checked by decodeIndex
	n     int
}

func (ss streamSet) len() int {
	if ss.m != nil {
		return len(ss.m)
	}
	return ss.n
}

// each calls fn for every stream of ss's table (not its map). name is only
// valid during the call.
func (ss streamSet) each(fn func(name []byte, pos uint64)) {
	walkStreams(ss.table, ss.n, func(name []byte, pos uint64) error {
		fn(name, pos)
		return nil
	})
}

var errStreamTable = errors.New("malformed index stream table")

// walkStreams reads n entries of an index file's stream table from p,
// calling fn for each, and returns the bytes after them.
func walkStreams(p []byte, n int, fn func(name []byte, pos uint64) error) ([]byte, error) {
	for range n {
		l, k := binary.Uvarint(p)
		if k <= 0 || l > uint64(len(p)-k) {
			return nil, errStreamTable
		}
		name := p[k : k+int(l)]
		p = p[k+int(l):]
		v, k := binary.Uvarint(p)
		if k <= 0 {
			return nil, errStreamTable
		}
		p = p[k:]
		if err := fn(name, v); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// mergeOlder adds to dst the streams of ss that dst does not have: ss is
// older than every segment merged before it.
func (ss streamSet) mergeOlder(dst map[string]uint64) {
	if ss.m != nil {
		for k, v := range ss.m {
			if _, ok := dst[k]; !ok {
				dst[k] = v
			}
		}
		return
	}
	ss.each(func(name []byte, pos uint64) {
		if _, ok := dst[string(name)]; !ok {
			dst[string(name)] = pos
		}
	})
}

func encodeIndex(m *segMeta) []byte {
	n := idxHeaderSize + len(m.index)*idxEntrySize + 4
	for s := range m.streams {
		n += binary.MaxVarintLen32 + len(s) + binary.MaxVarintLen64
	}
	b := make([]byte, idxHeaderSize, n+4)
	copy(b, idxMagic)
	le.PutUint32(b[8:], formatVersion)
	le.PutUint64(b[16:], m.base)
	le.PutUint64(b[24:], uint64(m.size))
	le.PutUint64(b[32:], m.last)
	le.PutUint64(b[40:], uint64(m.lastTime))
	le.PutUint32(b[48:], uint32(len(m.index)))
	le.PutUint32(b[52:], uint32(len(m.streams)))
	for _, e := range m.index {
		b = le.AppendUint64(b, e.pos)
		b = le.AppendUint64(b, uint64(e.time))
		b = le.AppendUint64(b, uint64(e.off))
	}
	for s, p := range m.streams {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
		b = binary.AppendUvarint(b, p)
	}
	return le.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeIndex decodes and checks an index file against its segment: its
// base and the segment file's size.
func decodeIndex(b []byte, base uint64, segSize int64) (*segMeta, error) {
	if len(b) < idxHeaderSize+4 {
		return nil, errors.New("short index file")
	}
	if string(b[:8]) != idxMagic {
		return nil, errors.New("bad index magic")
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != le.Uint32(b[len(b)-4:]) {
		return nil, errors.New("index checksum mismatch")
	}
	if v := le.Uint32(b[8:]); v != formatVersion {
		return nil, fmt.Errorf("index format version %d not supported", v)
	}
	m := &segMeta{
		base:     le.Uint64(b[16:]),
		size:     int64(le.Uint64(b[24:])),
		last:     le.Uint64(b[32:]),
		lastTime: int64(le.Uint64(b[40:])),
	}
	if m.base != base {
		return nil, fmt.Errorf("index names base %d, want %d", m.base, base)
	}
	if m.size != segSize {
		return nil, fmt.Errorf("index covers %d bytes, segment has %d", m.size, segSize)
	}
	if m.last+1 < m.base {
		return nil, errors.New("index last position before base")
	}
	ne, ns := int(le.Uint32(b[48:])), int(le.Uint32(b[52:]))
	p := b[idxHeaderSize:len(body)]
	if ne > len(p)/idxEntrySize {
		return nil, errors.New("index entry count over file size")
	}
	m.index = make([]indexEntry, ne)
	var prev indexEntry
	for i := range m.index {
		e := indexEntry{pos: le.Uint64(p), time: int64(le.Uint64(p[8:])), off: int64(le.Uint64(p[16:]))}
		p = p[idxEntrySize:]
		if e.pos < m.base || e.pos > m.last || e.off < segHeaderSize || e.off >= m.size ||
			(i > 0 && (e.pos <= prev.pos || e.off <= prev.off || e.time < prev.time)) {
			return nil, fmt.Errorf("index entry %d out of order", i)
		}
		m.index[i], prev = e, e
	}
	if (ne == 0) != (m.last < m.base) || (ne > 0 && (m.index[0].pos != m.base || m.index[0].off != segHeaderSize)) {
		return nil, errors.New("index does not start at the segment's first frame")
	}
	if ns > len(p) {
		return nil, errors.New("index stream count over file size")
	}
	table := p
	p, err := walkStreams(p, ns, func(_ []byte, pos uint64) error {
		if pos < m.base || pos > m.last {
			return errStreamTable
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.table = streamSet{table: table[:len(table)-len(p)], n: ns}
	if len(p) != 0 {
		return nil, errors.New("trailing bytes in index file")
	}
	return m, nil
}
