package twingraph

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
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
