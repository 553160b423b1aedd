package twingraph

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math/bits"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/hashicorp/go-memdb"

	"github.com/twinlog/twinlog/schemas/dtdl"
)

// LoadSnapshot reads a snapshot written by WriteSnapshot and returns a
// Graph in the state it recorded, at its position; applying the log from
// the next position on gives the same state as replaying it from the start.
// Any damage (truncation, bad checksum, inconsistent records) is an error
// wrapping ErrCorruptSnapshot; it never panics on bad input.
//
// It reads the whole snapshot into memory first (in one allocation when r
// is a file or knows its length) and decodes it from there.
func LoadSnapshot(r io.Reader, opts Options) (*Graph, error) {
	return loadSnapshot(r, opts, false)
}

// LoadSnapshotView is LoadSnapshot for a graph that is read, forked and
// dropped rather than kept applying for a long time: a historical read view
// (see projections/timetravel). It allocates the twins, their property and
// component arrays and their relationships in blocks shared by neighbouring
// twins, which loads faster and lays each twin out next to the previous one
// in id order, where a scan reads them. A block stays in memory while any
// twin of it does, so a graph whose twins are replaced one by one over a
// long life (the live graph) would keep the replaced ones' blocks: load
// that one with LoadSnapshot.
func LoadSnapshotView(r io.Reader, opts Options) (*Graph, error) {
	return loadSnapshot(r, opts, true)
}

func loadSnapshot(r io.Reader, opts Options, view bool) (*Graph, error) {
	var g *Graph
	err := readSnapshotBuf(r, view, func(data []byte) (err error) {
		g, _, err = decodeSnapshot(data, opts, view)
		return err
	})
	return g, err
}

// readSnapshotBuf reads r into memory and calls decode with the bytes,
// which are valid only during the call. Views are loaded again and again:
// their buffers are reused.
func readSnapshotBuf(r io.Reader, view bool, decode func(data []byte) error) error {
	var buf []byte
	if view {
		if b, ok := viewBufs.Get().(*[]byte); ok {
			buf = *b
		}
		defer func() { viewBufs.Put(&buf) }()
	}
	data, err := readSnapshot(buf[:0], r)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
	}
	buf = data
	return decode(data)
}

// viewBufs holds the buffers of LoadSnapshotView. Nothing a load returns
// refers to its buffer: the strings kept are copied out of it.
var viewBufs sync.Pool

// readSnapshot reads r to its end into buf, in one allocation at most when
// r knows its size (a regular file, a bytes.Reader).
func readSnapshot(buf []byte, r io.Reader) ([]byte, error) {
	size := int64(0)
	switch v := r.(type) {
	case interface{ Len() int }:
		size = int64(v.Len())
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
	}
	// One byte more than the size, so that the read finding the end
	// does not grow the buffer.
	if want := max(min(size, 1<<40)+1, 512); int64(cap(buf)) < want {
		buf = make([]byte, 0, want)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

var errTruncated = fmt.Errorf("%w: truncated", ErrCorruptSnapshot)

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorruptSnapshot}, args...)...)
}

// snapDecoder reads a snapshot from its bytes. The first error stops it:
// every read after one returns zero values, so callers check err only
// where a zero value would mislead them.
type snapDecoder struct {
	b   []byte // the snapshot without its checksum
	i   int    // the next byte to read
	err error
	// syms are the symbols defined so far, nsym of them: len(syms) but
	// in a decoder of one block of twins, whose syms the skim of the
	// whole section defined (fixedSyms), where definitions are skipped.
	syms      []string
	nsym      int
	fixedSyms bool
	// strs packs the short strings of twins (ids, values, relationship
	// ids) into small shared chunks: a million twins make tens of millions
	// of them. A chunk lives as long as any string in it, which a twin's id
	// bounds to the twin's life.
	strs loadArena
	// view allocates twins and their arrays in blocks (LoadSnapshotView).
	view bool
	// owner is the id of the graph the twins are loaded into (Twin.owner).
	owner uint32
	slab  slab
	// The model of the last twin, as written and as resolved.
	lastSym, lastModel string
	haveModel          bool
	// decoded are the twins as decoded, once the graph is.
	decoded decodedTwins
}

// twinStrChunk is the size of the chunks twins' strings share.
const twinStrChunk = 1 << 10

func (d *snapDecoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.i = len(d.b)
}

// uvarint reads an unsigned varint; one-byte values take the inlined path.
func (d *snapDecoder) uvarint() uint64 {
	if i := uint(d.i); i < uint(len(d.b)) {
		if c := d.b[i]; c < 0x80 {
			d.i++
			return uint64(c)
		}
	}
	return d.uvarintSlow()
}

// uvarintSlow reads a varint of more than one byte: up to 9 bytes (every
// value below 2^63, times in nanoseconds included) from one 8-byte load
// when the snapshot has that much left, else as binary.Uvarint does.
func (d *snapDecoder) uvarintSlow() uint64 {
	if b := d.b[d.i:]; len(b) >= 9 {
		w := binary.LittleEndian.Uint64(b)
		if m := ^w & 0x8080808080808080; m != 0 {
			// The first byte without a continuation bit ends it.
			n := bits.TrailingZeros64(m)>>3 + 1
			d.i += n
			return compact7(w & (^uint64(0) >> (64 - 8*n)))
		}
		if b[8] < 0x80 {
			d.i += 9
			return compact7(w) | uint64(b[8])<<56
		}
	}
	v, n := binary.Uvarint(d.b[d.i:])
	if n <= 0 {
		if n == 0 {
			d.fail(errTruncated)
		} else {
			d.fail(corrupt("varint overflows 64 bits"))
		}
		return 0
	}
	d.i += n
	return v
}

// compact7 returns the 7-bit groups of the bytes of w (little-endian,
// continuation bits ignored) packed together: the value of a varint of up
// to 8 bytes.
func compact7(w uint64) uint64 {
	w = w&0x007f007f007f007f | (w&0x7f007f007f007f00)>>1
	w = w&0x00003fff00003fff | (w&0x3fff00003fff0000)>>2
	return w&0x000000000fffffff | (w&0x0fffffff00000000)>>4
}

// varint reads a zig-zag varint, as binary.Varint does.
func (d *snapDecoder) varint() int64 {
	ux := d.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (d *snapDecoder) byte() byte {
	if d.i < len(d.b) {
		c := d.b[d.i]
		d.i++
		return c
	}
	d.fail(errTruncated)
	return 0
}

// next returns the next n bytes, aliasing the snapshot.
func (d *snapDecoder) next(n uint64) []byte {
	if n > uint64(len(d.b)-d.i) {
		d.fail(errTruncated)
		return nil
	}
	b := d.b[d.i : d.i+int(n)]
	d.i += int(n)
	return b
}

// count reads a record count. Every record takes at least one byte, so a
// count beyond the bytes left is corrupt: it cannot drive a huge
// allocation.
func (d *snapDecoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)-d.i) {
		d.fail(corrupt("count %d out of range", n))
		return 0
	}
	return int(n)
}

// bytes reads a length-prefixed byte string into its own array.
func (d *snapDecoder) bytes() []byte {
	b := d.next(d.uvarint())
	if len(b) == 0 {
		return nil
	}
	return slices.Clone(b)
}

// str reads a string into its own allocation.
func (d *snapDecoder) str() string {
	b := d.next(d.uvarint())
	if len(b) == 0 {
		return ""
	}
	return string(b)
}

// tstr reads a string of a twin into the shared chunks.
func (d *snapDecoder) tstr() string {
	return d.strs.copy(d.next(d.uvarint()), twinStrChunk)
}

// alias reads a string aliasing the snapshot's bytes, for a string that is
// replaced before the load ends.
func (d *snapDecoder) alias() string {
	b := d.next(d.uvarint())
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func (d *snapDecoder) sym() string {
	n := d.uvarint()
	if n == 0 {
		if d.err != nil {
			return ""
		}
		if d.nsym < len(d.syms) {
			// Defined already by the skim that found this block.
			d.next(d.uvarint())
			d.nsym++
			return d.syms[d.nsym-1]
		}
		if d.fixedSyms {
			d.fail(corrupt("symbol %d not found by the skim", d.nsym+1))
			return ""
		}
		s := d.str()
		d.syms = append(d.syms, s)
		d.nsym++
		return s
	}
	if n > uint64(d.nsym) {
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

// loadArena holds short strings in large chunks instead of one allocation
// each.
type loadArena struct{ cur []byte }

// copy returns b as a string in the arena's chunks of the given size (a
// string over a quarter of a chunk gets its own allocation). The string
// is valid while the chunk is reachable, through it or the arena.
func (a *loadArena) copy(b []byte, chunk int) string {
	n := len(b)
	if n == 0 {
		return ""
	}
	if n > chunk/4 {
		return string(b)
	}
	if cap(a.cur)-len(a.cur) < n {
		a.cur = make([]byte, 0, chunk)
	}
	start := len(a.cur)
	a.cur = append(a.cur, b...)
	return unsafe.String(&a.cur[start], n)
}

// slab hands out twins, property and component arrays and relationships
// from blocks, for LoadSnapshotView.
type slab struct {
	twins []Twin
	props []Prop
	comps []Component
	rels  []Relationship
}

// Block sizes of a slab, in items. A property or component array larger
// than a quarter block gets its own allocation.
const (
	slabTwins = 64
	slabProps = 256
	slabComps = 64
	slabRels  = 256
)

// carve returns an empty slice with room for exactly n items (appends
// beyond them reallocate) from the block *blk of size size, starting a new
// block when it has less room left.
func carve[T any](blk *[]T, n, size int) []T {
	if cap(*blk)-len(*blk) < n {
		*blk = make([]T, 0, size)
	}
	start := len(*blk)
	*blk = (*blk)[:start+n]
	return (*blk)[start : start : start+n]
}

func (d *snapDecoder) newTwin() *Twin {
	if !d.view {
		return &Twin{owner: d.owner}
	}
	if len(d.slab.twins) == 0 {
		d.slab.twins = make([]Twin, slabTwins)
	}
	t := &d.slab.twins[0]
	d.slab.twins = d.slab.twins[1:]
	t.owner = d.owner
	return t
}

func (d *snapDecoder) propArray(n int) []Prop {
	if !d.view || n > slabProps/4 {
		return make([]Prop, 0, min(n, 1024))
	}
	return carve(&d.slab.props, n, slabProps)
}

func (d *snapDecoder) compArray(n int) []Component {
	if !d.view || n > slabComps/4 {
		return make([]Component, 0, min(n, 1024))
	}
	return carve(&d.slab.comps, n, slabComps)
}

// relArray returns room for n relationships, to be taken one by one.
func (d *snapDecoder) relArray(n int) []Relationship {
	if !d.view || n > slabRels/4 {
		return make([]Relationship, min(n, 1<<16))
	}
	return carve(&d.slab.rels, n, slabRels)[:n]
}

func (d *snapDecoder) sectionState(s *Section) {
	s.Updated = d.varint()
	n := d.count()
	if n == 0 {
		return
	}
	props := d.propArray(n)
	for range n {
		p := Prop{Name: d.sym(), Value: d.tstr()}
		p.Updated = s.Updated + d.varint()
		p.SourceTime = d.tstr()
		if d.err != nil {
			return
		}
		if k := len(props); k > 0 && props[k-1].Name >= p.Name {
			d.fail(corrupt("properties out of order"))
			return
		}
		props = append(props, p)
	}
	s.Props = props
}

func decodeSnapshot(data []byte, opts Options, view bool) (*Graph, *snapDecoder, error) {
	if len(data) < len(snapMagic) {
		return nil, nil, errTruncated
	}
	if string(data[:len(snapMagic)]) != snapMagic {
		return nil, nil, corrupt("bad magic")
	}
	if len(data) < len(snapMagic)+4 {
		return nil, nil, errTruncated
	}
	d := &snapDecoder{b: data[:len(data)-4], i: len(snapMagic), view: view}
	sum := make(chan uint32, 1)
	go func() { sum <- crc32.Checksum(d.b, castagnoli) }()
	g, err := d.graph(opts)
	// The checksum, computed meanwhile, is checked last, so that damaged
	// bytes are read like any others (the fuzz test reaches the decoder).
	// It is waited for whatever happened: the caller may reuse data.
	want := <-sum
	if err != nil {
		if !errors.Is(err, ErrCorruptSnapshot) {
			err = fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
		}
		return nil, nil, err
	}
	if got := binary.LittleEndian.Uint32(data[len(data)-4:]); got != want {
		return nil, nil, corrupt("checksum %08x, want %08x", got, want)
	}
	g.publish()
	// Nothing kept may alias data (relationship targets were resolved).
	d.b = nil
	return g, d, nil
}

// graph decodes everything but the checksum; the caller publishes the
// graph.
func (d *snapDecoder) graph(opts Options) (*Graph, error) {
	if v := d.uvarint(); d.err == nil && v != snapVersion {
		return nil, corrupt("unknown version %d", v)
	}
	g := New(opts)
	d.owner = g.id
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

	// The twins are decoded on other goroutines (see twins) while this
	// one reads the sections after them.
	twinsDone := d.twins(reg)
	restErr := d.tail(txn, &g.telem)
	tw, err := twinsDone()
	if err != nil {
		return nil, err
	}
	if restErr != nil {
		return nil, restErr
	}
	if err := linkIncoming(tw.twins, tw.rels); err != nil {
		return nil, err
	}
	g.twins = buildTwinTreesKeys(tw.ids, tw.keys, tw.twins)
	d.decoded = tw
	for _, s := range d.syms {
		g.names[s] = s
	}
	txn.Commit()
	g.reg, g.pos, g.modelsVersion = reg, pos, modelsVersion
	return g, nil
}

// tail decodes the sections after the twins, inserting the tombs into txn
// and setting *telem, up to the end marker.
func (d *snapDecoder) tail(txn *memdb.Txn, telem *btree[string, *TelemetryRecord]) error {
	n := d.expect(secTombs)
	prev := ""
	for i := range n {
		tb := &tomb{ID: d.str(), Version: d.uvarint()}
		if d.err != nil {
			return d.err
		}
		if i > 0 && tb.ID <= prev {
			return corrupt("tombs out of order")
		}
		prev = tb.ID
		if err := txn.Insert(tableTombs, tb); err != nil {
			return err
		}
	}

	n = d.expect(secTelemetry)
	prev = ""
	var ids []string
	var recs []*TelemetryRecord
	for i := range n {
		rec := &TelemetryRecord{Twin: d.str(), Version: d.uvarint()}
		if nr := d.count(); nr > 0 {
			rec.Recent = make([]string, 0, min(nr, RecentMessageIDs))
			for range nr {
				rec.Recent = append(rec.Recent, d.str())
				if d.err != nil {
					break
				}
			}
		}
		if nl := d.count(); nl > 0 {
			rec.Last = make([]TelemetryValue, 0, min(nl, 64))
			for range nl {
				rec.Last = append(rec.Last, TelemetryValue{Component: d.sym(), MessageID: d.str(), Time: d.varint(), SourceTime: d.str(), Body: d.bytes()})
				if d.err != nil {
					break
				}
			}
		}
		if d.err != nil {
			return d.err
		}
		if i > 0 && rec.Twin <= prev {
			return corrupt("telemetry out of order")
		}
		prev = rec.Twin
		ids, recs = append(ids, rec.Twin), append(recs, rec)
	}
	*telem = buildBtree(strings.Compare, ids, recs)

	if tag := d.byte(); d.err == nil && tag != secEnd {
		return corrupt("missing end marker")
	}
	if d.err != nil {
		return d.err
	}
	if d.i != len(d.b) {
		return corrupt("trailing data")
	}
	return nil
}

// decodedTwins is the twins section decoded: the twins in id order, their
// ids, and how many relationships they have. Relationship targets alias
// the snapshot's bytes until linkIncoming resolves them.
type decodedTwins struct {
	twins []*Twin
	ids   []string
	keys  []modelKey // (model, id) of each twin, for the model tree
	rels  int
}

// A twins section of at least parallelTwins twins is decoded by several
// goroutines (loadWorkers, or GOMAXPROCS up to 8 when 0), in blocks of
// blockTwins twins. Variables for tests.
var (
	parallelTwins = 8192
	blockTwins    = 2048
	loadWorkers   = 0
)

// twins starts decoding the twins section and returns, with d past the
// section, a function waiting for the result. A large section is skimmed
// here (its records parsed without building anything, which defines the
// symbols and finds where each block of twins starts) and each block is
// decoded on one of up to GOMAXPROCS goroutines, counting the one that
// waits; a small one is decoded here.
func (d *snapDecoder) twins(reg *dtdl.Registry) func() (decodedTwins, error) {
	n := d.expect(secTwins)
	workers := loadWorkers
	if workers == 0 {
		workers = min(runtime.GOMAXPROCS(0), 8)
	}
	if d.err != nil || n < parallelTwins || workers < 2 {
		var dt decodedTwins
		dt.twins = make([]*Twin, min(n, 1<<20))[:0]
		dt.ids = make([]string, 0, cap(dt.twins))
		dt.keys = make([]modelKey, 0, cap(dt.twins))
		for range n {
			t, nrels := d.twin(reg)
			if d.err != nil {
				break
			}
			if k := len(dt.ids); k > 0 && dt.ids[k-1] >= t.ID {
				d.fail(corrupt("twins out of order at %q", t.ID))
				break
			}
			dt.twins, dt.ids = append(dt.twins, t), append(dt.ids, t.ID)
			dt.keys = append(dt.keys, modelKey{t.Model, t.ID})
			dt.rels += nrels
		}
		err := d.err
		return func() (decodedTwins, error) { return dt, err }
	}

	// n is at most the bytes left (see count), so these are bounded by
	// the snapshot's size.
	dt := decodedTwins{twins: make([]*Twin, n), ids: make([]string, n), keys: make([]modelKey, n)}
	nblocks := (n + blockTwins - 1) / blockTwins
	errs := make([]error, nblocks)
	rels := make([]int, nblocks)
	type block struct {
		first, start, end int
		syms              []string
		nsym              int
	}
	blocks := make(chan block, nblocks)
	decode := func() {
		for b := range blocks {
			bd := snapDecoder{b: d.b[:b.end], i: b.start, syms: b.syms, nsym: b.nsym, fixedSyms: true, view: d.view, owner: d.owner}
			last := min(b.first+blockTwins, n)
			for i := b.first; i < last; i++ {
				t, nrels := bd.twin(reg)
				if bd.err != nil {
					break
				}
				if i > b.first && dt.ids[i-1] >= t.ID {
					bd.fail(corrupt("twins out of order at %q", t.ID))
					break
				}
				dt.twins[i], dt.ids[i], dt.keys[i] = t, t.ID, modelKey{t.Model, t.ID}
				rels[b.first/blockTwins] += nrels
			}
			if bd.err == nil && bd.i != b.end {
				bd.fail(corrupt("twin block at %d misread", b.start))
			}
			errs[b.first/blockTwins] = bd.err
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(decode)
	}
	// The skim: a block is handed out once skimmed, with every symbol it
	// uses defined.
	for first := 0; first < n && d.err == nil; first += blockTwins {
		start, nsym := d.i, d.nsym
		for range min(blockTwins, n-first) {
			d.skipTwin()
		}
		if d.err == nil {
			blocks <- block{first: first, start: start, end: d.i, syms: d.syms[:d.nsym:d.nsym], nsym: nsym}
		}
	}
	close(blocks)
	skimErr := d.err
	return func() (decodedTwins, error) {
		decode()
		wg.Wait()
		if skimErr != nil {
			return dt, skimErr
		}
		for i, err := range errs {
			if err != nil {
				return dt, err
			}
			if f := i * blockTwins; i > 0 && dt.ids[f-1] >= dt.ids[f] {
				return dt, corrupt("twins out of order at %q", dt.ids[f])
			}
			dt.rels += rels[i]
		}
		return dt, nil
	}
}

// twin decodes one twin and returns it with its number of relationships.
func (d *snapDecoder) twin(reg *dtdl.Registry) (*Twin, int) {
	t := d.newTwin()
	t.ID = d.tstr()
	// Twins come in id order, where runs of one model are common: the
	// model's resolved id is looked up once per run.
	if m := d.sym(); !d.haveModel || m != d.lastSym {
		d.lastSym, d.lastModel, d.haveModel = m, m, true
		if itf, ok := reg.Get(m); ok {
			d.lastModel = itf.ID
		}
	}
	t.Model = d.lastModel
	t.Version, t.ETagPos = d.uvarint(), d.uvarint()
	d.sectionState(&t.Section)
	if nc := d.count(); nc > 0 {
		comps := d.compArray(nc)
		for range nc {
			c := Component{Name: d.sym()}
			d.sectionState(&c.Section)
			if d.err != nil {
				return nil, 0
			}
			if k := len(comps); k > 0 && comps[k-1].Name >= c.Name {
				d.fail(corrupt("twin %s: components out of order", t.ID))
				return nil, 0
			}
			comps = append(comps, c)
		}
		t.Components = comps
	}
	if no := d.count(); no > 0 {
		t.Out = make([]*Relationship, 0, min(no, 1<<16))
		var rels []Relationship
		for i := range no {
			if len(rels) == 0 {
				rels = d.relArray(no - i)
			}
			r := &rels[0]
			rels = rels[1:]
			*r = Relationship{Source: t.ID, ID: d.tstr(), Name: d.sym(), Target: d.alias(), Props: d.tstr(), ETagPos: d.uvarint()}
			if d.err != nil {
				return nil, 0
			}
			if k := len(t.Out); k > 0 && t.Out[k-1].ID >= r.ID {
				d.fail(corrupt("twin %s: relationships out of order", t.ID))
				return nil, 0
			}
			t.Out = append(t.Out, r)
		}
	}
	if d.err != nil {
		return nil, 0
	}
	return t, len(t.Out)
}

// skipTwin reads past one twin's record as twin does, defining the
// symbols it defines and building nothing.
func (d *snapDecoder) skipTwin() {
	d.skip() // id
	d.sym()  // model
	d.skipVarint()
	d.skipVarint()
	d.skipSection()
	for range d.count() {
		d.sym()
		d.skipSection()
	}
	for range d.count() {
		d.skip() // id
		d.sym()  // name
		d.skip() // target
		d.skip() // properties
		d.skipVarint()
	}
}

func (d *snapDecoder) skipSection() {
	d.skipVarint()
	for range d.count() {
		d.sym()
		d.skip() // value
		d.skipVarint()
		d.skip() // source time
	}
}

// skip reads past a length-prefixed string.
func (d *snapDecoder) skip() {
	if n := d.uvarint(); n <= uint64(len(d.b)-d.i) {
		d.i += int(n)
	} else {
		d.fail(errTruncated)
	}
}

// skipVarint reads past a varint whose value is not needed: up to 8 bytes
// from one load.
func (d *snapDecoder) skipVarint() {
	if b := d.b[d.i:]; len(b) >= 8 {
		if m := ^binary.LittleEndian.Uint64(b) & 0x8080808080808080; m != 0 {
			d.i += bits.TrailingZeros64(m)>>3 + 1
			return
		}
	}
	d.uvarintSlow()
}

// linkIncoming resolves each relationship's target to its twin and builds
// the incoming lists. Twins are in id order and each one's outgoing list in
// id order, so appending in that order sorts the incoming lists by (source,
// id).
func linkIncoming(twins []*Twin, nrels int) error {
	if nrels == 0 {
		return nil
	}
	targets := make([]int32, 0, nrels)
	counts := make([]int32, len(twins))
	for si, t := range twins {
		for _, r := range t.Out {
			i := findNear(twins, r.Target, si)
			if i < 0 {
				return corrupt("relationship %s/%s: target %q does not exist", t.ID, r.ID, r.Target)
			}
			r.Target = twins[i].ID
			targets = append(targets, int32(i))
			counts[i]++
		}
	}
	k := 0
	for _, t := range twins {
		for _, r := range t.Out {
			ti := targets[k]
			k++
			tgt := twins[ti]
			if tgt.In == nil {
				tgt.In = make([]*Relationship, 0, counts[ti])
			}
			tgt.In = append(tgt.In, r)
		}
	}
	return nil
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
