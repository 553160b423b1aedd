package twingraph

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"unsafe"
)

// Snapshot file format, version 1. Everything is little-endian; integers
// are unsigned or zig-zag varints; a string is its length and bytes.
//
//	header    "TLGSNAP\n", uvarint version (1), uvarint position, uvarint modelsVersion
//	section*  one tag byte, uvarint count, count records
//	end       tag 0, then the CRC-32C (4 bytes) of every byte before it
//
// Sections, in this order, each present once:
//
//	1 models     id, position, uploaded (varint), decommissioned (byte), definition
//	2 twins      in strictly increasing id order: id, sym model, version, etagPos,
//	             section, components (count, then sym name, section each),
//	             outgoing relationships (count, then in id order: id, sym name,
//	             target, props, etagPos)
//	3 tombs      id, version
//	4 telemetry  twin, version, recent ids (count, strings), last values
//	             (count, then component, messageId, time, sourceTime, body)
//
// A section is its $lastUpdateTime (varint) and its properties in name order
// (count, then sym name, value, updated - section time (varint), sourceTime).
// A sym is a string that repeats (model ids, property, component and
// relationship names): uvarint 0 then the string defines the next symbol,
// uvarint n refers to symbol n-1. Incoming relationship lists are not
// stored: they are rebuilt from the outgoing ones.
const (
	snapMagic   = "TLGSNAP\n"
	snapVersion = 1

	secEnd       = 0
	secModels    = 1
	secTwins     = 2
	secTombs     = 3
	secTelemetry = 4

	maxSnapString = 1 << 28 // a corrupt length fails cleanly rather than allocating it
)

// ErrCorruptSnapshot is returned by LoadSnapshot for input that is not a
// valid snapshot: bad magic or version, bad checksum, truncation, or
// records that contradict each other.
var ErrCorruptSnapshot = errors.New("twingraph: corrupt snapshot")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteSnapshot writes the state of s (models, twins with their
// relationships, deleted twins' stream versions, telemetry de-duplication
// state, and the position) to w in the snapshot format. It reads only s,
// which is immutable, so it can run in any goroutine while the graph keeps
// applying. It returns the bytes written.
func WriteSnapshot(w io.Writer, s *Snapshot) (int64, error) {
	h := crc32.New(castagnoli)
	cw := &countWriter{w: io.MultiWriter(w, h)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	e := &snapEncoder{w: bw, syms: map[string]uint64{}}
	e.raw([]byte(snapMagic))
	e.uvarint(snapVersion)
	e.uvarint(s.pos)
	e.uvarint(s.modelsVersion)

	var models []*ModelRecord
	for m := range s.ModelRecords() {
		models = append(models, m)
	}
	// Re-adding models in upload order (then by id within an upload)
	// rebuilds the registry: an upload only references earlier ones.
	slices.SortFunc(models, func(a, b *ModelRecord) int {
		if a.Position != b.Position {
			return cmpUint(a.Position, b.Position)
		}
		return strings.Compare(a.ID, b.ID)
	})
	e.section(secModels, len(models))
	for _, m := range models {
		e.str(m.ID)
		e.uvarint(m.Position)
		e.varint(m.Uploaded)
		e.bool(m.Decommissioned)
		e.bytes(m.Definition)
	}

	e.section(secTwins, s.twinCount())
	for t := range s.Twins() {
		e.str(t.ID)
		e.sym(t.Model)
		e.uvarint(t.Version)
		e.uvarint(t.ETagPos)
		e.sectionState(&t.Section)
		e.uvarint(uint64(len(t.Components)))
		for i := range t.Components {
			c := &t.Components[i]
			e.sym(c.Name)
			e.sectionState(&c.Section)
		}
		e.uvarint(uint64(len(t.Out)))
		for _, r := range t.Out {
			e.str(r.ID)
			e.sym(r.Name)
			e.str(r.Target)
			e.str(r.Props)
			e.uvarint(r.ETagPos)
		}
	}

	var tombs []*tomb
	if it, err := s.txn.Get(tableTombs, "id"); err == nil {
		for raw := it.Next(); raw != nil; raw = it.Next() {
			tombs = append(tombs, raw.(*tomb))
		}
	}
	e.section(secTombs, len(tombs))
	for _, tb := range tombs {
		e.str(tb.ID)
		e.uvarint(tb.Version)
	}

	e.section(secTelemetry, s.telem.Len())
	for r := range s.telemetryRecords() {
		e.str(r.Twin)
		e.uvarint(r.Version)
		e.uvarint(uint64(len(r.Recent)))
		for _, id := range r.Recent {
			e.str(id)
		}
		e.uvarint(uint64(len(r.Last)))
		for _, v := range r.Last {
			e.sym(v.Component)
			e.str(v.MessageID)
			e.varint(v.Time)
			e.str(v.SourceTime)
			e.bytes(v.Body)
		}
	}
	e.raw([]byte{secEnd})
	if e.err == nil {
		e.err = bw.Flush()
	}
	if e.err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", e.err)
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], h.Sum32())
	if _, err := w.Write(sum[:]); err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", err)
	}
	return cw.n + 4, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// twinCount counts the twins of the snapshot.
func (s *Snapshot) twinCount() int {
	return s.twins.byID.Len()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type snapEncoder struct {
	w    *bufio.Writer
	buf  [binary.MaxVarintLen64]byte
	syms map[string]uint64
	err  error
}

func (e *snapEncoder) raw(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *snapEncoder) uvarint(v uint64) { e.raw(binary.AppendUvarint(e.buf[:0], v)) }
func (e *snapEncoder) varint(v int64)   { e.raw(binary.AppendVarint(e.buf[:0], v)) }

func (e *snapEncoder) bool(b bool) {
	if b {
		e.raw([]byte{1})
	} else {
		e.raw([]byte{0})
	}
}

func (e *snapEncoder) str(s string) {
	e.uvarint(uint64(len(s)))
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}

func (e *snapEncoder) bytes(b []byte) {
	e.uvarint(uint64(len(b)))
	e.raw(b)
}

func (e *snapEncoder) sym(s string) {
	if n, ok := e.syms[s]; ok {
		e.uvarint(n)
		return
	}
	e.syms[s] = uint64(len(e.syms)) + 1
	e.uvarint(0)
	e.str(s)
}

func (e *snapEncoder) section(tag byte, n int) {
	e.raw([]byte{tag})
	e.uvarint(uint64(n))
}

func (e *snapEncoder) sectionState(s *Section) {
	e.varint(s.Updated)
	e.uvarint(uint64(len(s.Props)))
	for i := range s.Props {
		p := &s.Props[i]
		e.sym(p.Name)
		e.str(p.Value)
		e.varint(p.Updated - s.Updated)
		e.str(p.SourceTime)
	}
}

// LoadSnapshot reads a snapshot written by WriteSnapshot and returns a
// Graph in the state it recorded, at its position; applying the log from
// the next position on gives the same state as replaying it from the start.
// Any damage (truncation, bad checksum, inconsistent records) is an error
// wrapping ErrCorruptSnapshot; it never panics on bad input.
func LoadSnapshot(r io.Reader, opts Options) (*Graph, error) {
	d := &snapDecoder{r: &snapReader{src: r, buf: make([]byte, 1<<20)}}
	g, err := d.graph(opts)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: truncated", ErrCorruptSnapshot)
		} else if !errors.Is(err, ErrCorruptSnapshot) {
			err = fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
		}
		return nil, err
	}
	return g, nil
}

type snapDecoder struct {
	r    *snapReader
	syms []string
	err  error
	// strs packs the short strings of twins (ids, values, relationship
	// ids) into small shared chunks: a million twins make tens of millions
	// of them. A chunk lives as long as any string in it, which a twin's id
	// bounds to the twin's life.
	strs loadArena
}

// twinStrChunk is the size of the chunks twins' strings share.
const twinStrChunk = 1 << 10

// snapReader is a buffered reader that checksums what has been consumed
// (not what has been buffered), so the checksum trailer can follow the
// data it covers in one stream.
type snapReader struct {
	src  io.Reader
	buf  []byte
	r, w int
	crc  uint32
}

func (b *snapReader) fill() error {
	b.crc = crc32.Update(b.crc, castagnoli, b.buf[:b.r])
	b.w = copy(b.buf, b.buf[b.r:b.w])
	b.r = 0
	for b.w < len(b.buf) {
		n, err := b.src.Read(b.buf[b.w:])
		b.w += n
		if err != nil {
			if n > 0 {
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	return nil
}

// ReadByte implements io.ByteReader for binary.ReadUvarint.
func (b *snapReader) ReadByte() (byte, error) {
	if b.r == b.w {
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	c := b.buf[b.r]
	b.r++
	return c, nil
}

func (b *snapReader) readFull(p []byte) error {
	for len(p) > 0 {
		if b.r == b.w {
			if err := b.fill(); err != nil {
				if err == io.EOF {
					return io.ErrUnexpectedEOF
				}
				return err
			}
		}
		n := copy(p, b.buf[b.r:b.w])
		b.r += n
		p = p[n:]
	}
	return nil
}

// sum returns the checksum of everything consumed so far.
func (b *snapReader) sum() uint32 {
	b.crc = crc32.Update(b.crc, castagnoli, b.buf[:b.r])
	b.w = copy(b.buf, b.buf[b.r:b.w])
	b.r = 0
	return b.crc
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorruptSnapshot}, args...)...)
}

func (d *snapDecoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *snapDecoder) byte() byte {
	if d.err != nil {
		return 0
	}
	b, err := d.r.ReadByte()
	if err != nil {
		d.fail(err)
	}
	return b
}

func (d *snapDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d.r)
	if err != nil {
		d.fail(err)
	}
	return v
}

func (d *snapDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(d.r)
	if err != nil {
		d.fail(err)
	}
	return v
}

// count reads a record count, bounded so that a corrupt count cannot
// drive a huge allocation (records are at least one byte each).
func (d *snapDecoder) count() int {
	n := d.uvarint()
	if n > maxSnapString {
		d.fail(corrupt("count %d out of range", n))
		return 0
	}
	return int(n)
}

func (d *snapDecoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	return d.bytesN(n)
}

func (d *snapDecoder) bytesN(n uint64) []byte {
	if n > maxSnapString {
		d.fail(corrupt("length %d out of range", n))
		return nil
	}
	if n == 0 {
		return nil
	}
	b := make([]byte, 0, min(n, 1<<16))
	for uint64(len(b)) < n && d.err == nil {
		chunk := min(n-uint64(len(b)), 1<<16)
		start := len(b)
		b = append(b, make([]byte, chunk)...)
		if err := d.r.readFull(b[start:]); err != nil {
			d.fail(err)
			return nil
		}
	}
	return b
}

func (d *snapDecoder) str() string {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return ""
	}
	if n <= uint64(len(d.r.buf)) {
		// The common case: copy straight from the buffer.
		for uint64(d.r.w-d.r.r) < n {
			if err := d.r.fill(); err != nil && uint64(d.r.w-d.r.r) < n {
				d.fail(io.ErrUnexpectedEOF)
				return ""
			}
		}
		s := string(d.r.buf[d.r.r : d.r.r+int(n)])
		d.r.r += int(n)
		return s
	}
	b := d.bytesN(n)
	if len(b) == 0 {
		return ""
	}
	return string(b)
}

// loadArena holds strings needed only while loading, in large chunks
// instead of one allocation each.
type loadArena struct{ cur []byte }

// str reads a string into the arena. The string is valid while the
// arena's chunks are reachable, through it or the string.
func (a *loadArena) str(d *snapDecoder) string { return a.strChunk(d, 1<<20) }

// strChunk is str with chunks of the given size.
func (a *loadArena) strChunk(d *snapDecoder, chunk int) string {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return ""
	}
	if n > uint64(chunk)/4 {
		if n > maxSnapString {
			d.fail(corrupt("length %d out of range", n))
			return ""
		}
		return string(d.bytesN(n))
	}
	if cap(a.cur)-len(a.cur) < int(n) {
		a.cur = make([]byte, 0, chunk)
	}
	start := len(a.cur)
	a.cur = a.cur[:start+int(n)]
	if err := d.r.readFull(a.cur[start:]); err != nil {
		d.fail(err)
		return ""
	}
	return unsafe.String(&a.cur[start], int(n))
}

// findNear returns the index of the twin with the given id, or -1,
// searching outwards from index from: relationships mostly link twins
// whose ids sort close together (a room and its sensors).
func findNear(twins []*Twin, id string, from int) int {
	lo, hi := 0, len(twins)
	switch c := strings.Compare(twins[from].ID, id); {
	case c == 0:
		return from
	case c < 0:
		lo = from + 1
		for step := 1; ; step *= 2 {
			j := from + step
			if j >= len(twins) {
				break
			}
			c := strings.Compare(twins[j].ID, id)
			if c == 0 {
				return j
			}
			if c > 0 {
				hi = j
				break
			}
			lo = j + 1
		}
	default:
		hi = from
		for step := 1; ; step *= 2 {
			j := from - step
			if j < 0 {
				break
			}
			c := strings.Compare(twins[j].ID, id)
			if c == 0 {
				return j
			}
			if c < 0 {
				lo = j + 1
				break
			}
			hi = j
		}
	}
	i, ok := slices.BinarySearchFunc(twins[lo:hi], id, func(t *Twin, id string) int { return strings.Compare(t.ID, id) })
	if !ok {
		return -1
	}
	return lo + i
}

// tstr reads a string of a twin into the shared chunks.
func (d *snapDecoder) tstr() string { return d.strs.strChunk(d, twinStrChunk) }

func (d *snapDecoder) sym() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n == 0 {
		s := d.str()
		d.syms = append(d.syms, s)
		return s
	}
	if n > uint64(len(d.syms)) {
		d.fail(corrupt("symbol %d undefined", n))
		return ""
	}
	return d.syms[n-1]
}

func (d *snapDecoder) expect(tag byte) int {
	if got := d.byte(); d.err == nil && got != tag {
		d.fail(corrupt("section %d, want %d", got, tag))
	}
	return d.count()
}

func (d *snapDecoder) sectionState(s *Section) {
	s.Updated = d.varint()
	n := d.count()
	if d.err != nil || n == 0 {
		return
	}
	s.Props = make([]Prop, 0, min(n, 1024))
	for range n {
		p := Prop{Name: d.sym(), Value: d.tstr()}
		p.Updated = s.Updated + d.varint()
		p.SourceTime = d.tstr()
		if d.err != nil {
			return
		}
		if k := len(s.Props); k > 0 && s.Props[k-1].Name >= p.Name {
			d.fail(corrupt("properties out of order"))
			return
		}
		s.Props = append(s.Props, p)
	}
}

func (d *snapDecoder) graph(opts Options) (*Graph, error) {
	head := make([]byte, len(snapMagic))
	if err := d.r.readFull(head); err != nil {
		return nil, err
	}
	if string(head) != snapMagic {
		return nil, corrupt("bad magic")
	}
	if v := d.uvarint(); d.err == nil && v != snapVersion {
		return nil, corrupt("unknown version %d", v)
	}
	g := New(opts)
	pos, modelsVersion := d.uvarint(), d.uvarint()
	if d.err != nil {
		return nil, d.err
	}
	txn := g.db.Txn(true)
	defer txn.Abort()

	// Models: re-add each upload's documents in upload order.
	n := d.expect(secModels)
	reg := g.reg
	var batch []*ModelRecord
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		docs := make([]json.RawMessage, len(batch))
		for i, m := range batch {
			docs[i] = m.Definition
		}
		next, _, err := reg.Add(ModelDocuments(docs))
		if err != nil {
			return corrupt("models at %d: %v", batch[0].Position, err)
		}
		reg = next
		for _, m := range batch {
			itf, ok := reg.Get(m.ID)
			if !ok {
				return corrupt("model %s not defined by its document", m.ID)
			}
			m.ID = itf.ID
			if m.Decommissioned {
				if reg, err = reg.Decommission(m.ID); err != nil {
					return corrupt("decommission %s: %v", m.ID, err)
				}
			}
			if err := txn.Insert(tableModels, m); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	for range n {
		m := &ModelRecord{ID: d.str(), Position: d.uvarint(), Uploaded: d.varint(), Decommissioned: d.byte() != 0, Definition: d.bytes()}
		if d.err != nil {
			return nil, d.err
		}
		if len(batch) > 0 && batch[0].Position != m.Position {
			if batch[0].Position > m.Position {
				return nil, corrupt("models out of order")
			}
			if err := flush(); err != nil {
				return nil, err
			}
		}
		batch = append(batch, m)
	}
	if err := flush(); err != nil {
		return nil, err
	}

	// Twins, in id order, with their outgoing relationships.
	n = d.expect(secTwins)
	if d.err != nil {
		return nil, d.err
	}
	twins := make([]*Twin, 0, min(n, 1<<20))
	nrels := 0
	var scratch loadArena // relationship targets, until resolved to twin ids
	for range n {
		t := &Twin{ID: d.tstr()}
		t.Model = d.sym()
		if itf, ok := reg.Get(t.Model); ok {
			t.Model = itf.ID
		}
		t.Version, t.ETagPos = d.uvarint(), d.uvarint()
		d.sectionState(&t.Section)
		if nc := d.count(); nc > 0 && d.err == nil {
			t.Components = make([]Component, 0, min(nc, 1024))
			for range nc {
				c := Component{Name: d.sym()}
				d.sectionState(&c.Section)
				if d.err != nil {
					break
				}
				if k := len(t.Components); k > 0 && t.Components[k-1].Name >= c.Name {
					return nil, corrupt("twin %s: components out of order", t.ID)
				}
				t.Components = append(t.Components, c)
			}
		}
		if no := d.count(); no > 0 && d.err == nil {
			t.Out = make([]*Relationship, 0, min(no, 1<<16))
			var rels []Relationship
			for i := range no {
				if len(rels) == 0 {
					rels = make([]Relationship, min(no-i, 1<<16))
				}
				r := &rels[0]
				rels = rels[1:]
				*r = Relationship{Source: t.ID, ID: d.tstr(), Name: d.sym(), Target: scratch.str(d), Props: d.tstr(), ETagPos: d.uvarint()}
				if d.err != nil {
					break
				}
				if k := len(t.Out); k > 0 && t.Out[k-1].ID >= r.ID {
					return nil, corrupt("twin %s: relationships out of order", t.ID)
				}
				t.Out = append(t.Out, r)
			}
			nrels += len(t.Out)
		}
		if d.err != nil {
			return nil, d.err
		}
		if k := len(twins); k > 0 && twins[k-1].ID >= t.ID {
			return nil, corrupt("twins out of order at %q", t.ID)
		}
		twins = append(twins, t)
	}

	// Incoming lists: twins are in id order and each one's outgoing list
	// in id order, so appending in that order sorts them by (source, id).
	targets := make([]int32, 0, nrels)
	counts := make([]int32, len(twins))
	for si, t := range twins {
		for _, r := range t.Out {
			i := findNear(twins, r.Target, si)
			if i < 0 {
				return nil, corrupt("relationship %s/%s: target %q does not exist", t.ID, r.ID, r.Target)
			}
			r.Target = twins[i].ID
			targets = append(targets, int32(i))
			counts[i]++
		}
	}
	k := 0
	for _, t := range twins {
		for _, r := range t.Out {
			tgt := twins[targets[k]]
			k++
			if tgt.In == nil {
				tgt.In = make([]*Relationship, 0, counts[targets[k-1]])
			}
			tgt.In = append(tgt.In, r)
		}
	}
	targets, counts = nil, nil
	g.twins = buildTwinTrees(twins)
	twins = nil
	for _, s := range d.syms {
		g.names[s] = s
	}

	n = d.expect(secTombs)
	prev := ""
	for i := range n {
		tb := &tomb{ID: d.str(), Version: d.uvarint()}
		if d.err != nil {
			return nil, d.err
		}
		if i > 0 && tb.ID <= prev {
			return nil, corrupt("tombs out of order")
		}
		prev = tb.ID
		if err := txn.Insert(tableTombs, tb); err != nil {
			return nil, err
		}
	}

	n = d.expect(secTelemetry)
	prev = ""
	var telemIDs []string
	var telem []*TelemetryRecord
	for i := range n {
		rec := &TelemetryRecord{Twin: d.str(), Version: d.uvarint()}
		if nr := d.count(); nr > 0 && d.err == nil {
			rec.Recent = make([]string, 0, min(nr, RecentMessageIDs))
			for range nr {
				rec.Recent = append(rec.Recent, d.str())
				if d.err != nil {
					break
				}
			}
		}
		if nl := d.count(); nl > 0 && d.err == nil {
			rec.Last = make([]TelemetryValue, 0, min(nl, 64))
			for range nl {
				rec.Last = append(rec.Last, TelemetryValue{Component: d.sym(), MessageID: d.str(), Time: d.varint(), SourceTime: d.str(), Body: d.bytes()})
				if d.err != nil {
					break
				}
			}
		}
		if d.err != nil {
			return nil, d.err
		}
		if i > 0 && rec.Twin <= prev {
			return nil, corrupt("telemetry out of order")
		}
		prev = rec.Twin
		telemIDs, telem = append(telemIDs, rec.Twin), append(telem, rec)
	}
	g.telem = buildBtree(strings.Compare, telemIDs, telem)

	if tag := d.byte(); d.err == nil && tag != secEnd {
		return nil, corrupt("missing end marker")
	}
	if d.err != nil {
		return nil, d.err
	}
	want := d.r.sum()
	var sum [4]byte
	if err := d.r.readFull(sum[:]); err != nil {
		return nil, err
	}
	if got := binary.LittleEndian.Uint32(sum[:]); got != want {
		return nil, corrupt("checksum %08x, want %08x", got, want)
	}
	if _, err := d.r.ReadByte(); err != io.EOF {
		return nil, corrupt("trailing data")
	}
	txn.Commit()
	g.reg, g.pos, g.modelsVersion = reg, pos, modelsVersion
	g.publish()
	return g, nil
}
