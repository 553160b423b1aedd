package filelog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
)

var quiet = slog.New(slog.DiscardHandler)

func testEvent(stream string, i int) event.Event {
	return event.Event{Stream: stream, Type: "t", Actor: "test", SchemaVersion: 1,
		Payload: []byte(fmt.Sprintf("payload-%d-%s", i, strings.Repeat("x", i%37)))}
}

func mustOpen(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func mustAppend(t testing.TB, l *Log, batch ...event.Event) eventlog.Result {
	t.Helper()
	r, err := l.Append(context.Background(), batch)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return r
}

// readAll reads every event, failing the test on an error.
func readAll(t testing.TB, l *Log) []event.Event {
	t.Helper()
	evs, err := readAllErr(l)
	if err != nil {
		t.Fatalf("read all: %v", err)
	}
	return evs
}

func readAllErr(l *Log) ([]event.Event, error) {
	var out []event.Event
	for from := uint64(1); ; {
		evs, err := l.Read(context.Background(), from, 777)
		if err != nil {
			return out, err
		}
		if len(evs) == 0 {
			return out, nil
		}
		for i := range evs {
			if evs[i].Position != from+uint64(i) {
				return out, fmt.Errorf("position %d at index %d from %d", evs[i].Position, i, from)
			}
		}
		out = append(out, evs...)
		from = evs[len(evs)-1].Position + 1
	}
}

func checkEvents(t testing.TB, got []event.Event, want []event.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Position != uint64(i+1) || got[i].Stream != want[i].Stream || !bytes.Equal(got[i].Payload, want[i].Payload) {
			t.Fatalf("event %d = %d %q %q, want %q %q", i, got[i].Position, got[i].Stream, got[i].Payload, want[i].Stream, want[i].Payload)
		}
	}
}

func segPath(dir string, base uint64) string { return filepath.Join(dir, segName(base)) }

// dataSize returns the bytes of data in the i-th segment: header and
// frames, short of the preallocated rest.
func dataSize(l *Log, i int) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.segs[i].size
}

// buildLog appends n one-event batches and returns the events and the
// segment size after each append (the frame ends), for a one-segment log.
func buildLog(t *testing.T, dir string, n int) ([]event.Event, []int64) {
	t.Helper()
	l := mustOpen(t, dir, Options{})
	var want []event.Event
	var ends []int64
	for i := 0; i < n; i++ {
		e := testEvent(fmt.Sprintf("s%d", i%3), i)
		mustAppend(t, l, e)
		want = append(want, e)
		ends = append(ends, dataSize(l, 0))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return want, ends
}

func TestTornTail(t *testing.T) {
	src := t.TempDir()
	want, ends := buildLog(t, src, 12)
	orig, err := os.ReadFile(segPath(src, 1))
	if err != nil {
		t.Fatal(err)
	}
	if !zeroHeader(orig[ends[len(ends)-1]:]) {
		t.Fatal("segment data not followed by zeros")
	}
	orig = orig[:ends[len(ends)-1]]
	// complete returns how many frames end at or before size.
	complete := func(size int64) int {
		n := 0
		for n < len(ends) && ends[n] <= size {
			n++
		}
		return n
	}
	type tc struct {
		name string
		data []byte
	}
	var cases []tc
	// Truncation at every byte offset within the last three frames.
	for cut := ends[len(ends)-4] + 1; cut < ends[len(ends)-1]; cut++ {
		cases = append(cases, tc{fmt.Sprintf("truncate=%d", cut), orig[:cut]})
	}
	// Every byte of the last frame flipped.
	for off := ends[len(ends)-2]; off < ends[len(ends)-1]; off++ {
		b := bytes.Clone(orig)
		b[off] ^= 0xff
		cases = append(cases, tc{fmt.Sprintf("flip=%d", off), b})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 300)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	cases = append(cases,
		// Zeros after the last frame are the unwritten rest of a
		// preallocated segment: the clean end, cut but not reported.
		tc{"zeros=1", append(bytes.Clone(orig), 0)},
		tc{"zeros=4096", append(bytes.Clone(orig), make([]byte, 4096)...)},
		tc{"zeros-then-garbage", append(append(bytes.Clone(orig), make([]byte, frameHeaderSize)...), garbage...)},
		tc{"garbage=300", append(bytes.Clone(orig), garbage...)},
		tc{"half-frame-then-zeros", append(bytes.Clone(orig[:ends[len(ends)-1]-5]), make([]byte, 100)...)},
	)
	for _, c := range cases {
		dir := t.TempDir()
		if err := os.WriteFile(segPath(dir, 1), c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		size := int64(len(c.data))
		wantN := complete(size)
		var wantEnd int64 = segHeaderSize
		if wantN > 0 {
			wantEnd = ends[wantN-1]
		}
		if strings.HasPrefix(c.name, "flip=") || c.name == "half-frame-then-zeros" {
			wantN, wantEnd = len(ends)-1, ends[len(ends)-2]
		}
		l := mustOpen(t, dir, Options{})
		rec := l.Recovered()
		if rec.Head != uint64(wantN) {
			t.Fatalf("%s: head = %d, want %d", c.name, rec.Head, wantN)
		}
		cut := size - wantEnd
		if strings.HasPrefix(c.name, "zeros") {
			cut = 0
		}
		if rec.TornBytes != cut || (cut > 0) != (rec.TornSegment != "") || (cut > 0 && rec.TornOffset != wantEnd) {
			t.Fatalf("%s: recovered %+v, want %d bytes cut at %d", c.name, rec, cut, wantEnd)
		}
		checkEvents(t, readAll(t, l), want[:wantN])
		// The log goes on after the cut, and the next open finds it clean.
		e := testEvent("after", 1)
		mustAppend(t, l, e)
		l.Close()
		l = mustOpen(t, dir, Options{})
		if rec := l.Recovered(); rec.TornSegment != "" {
			t.Fatalf("%s: second open cut again: %+v", c.name, rec)
		}
		checkEvents(t, readAll(t, l), append(want[:wantN:wantN], e))
		l.Close()
	}
}

func TestTornTailReported(t *testing.T) {
	dir := t.TempDir()
	_, ends := buildLog(t, dir, 3)
	if err := os.Truncate(segPath(dir, 1), ends[2]-3); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	l := mustOpen(t, dir, Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	defer l.Close()
	rec := l.Recovered()
	if rec.Head != 2 || rec.TornReason != "short frame" {
		t.Fatalf("recovered %+v", rec)
	}
	if !strings.Contains(logged.String(), "torn_bytes") {
		t.Fatalf("recovery not logged: %q", logged.String())
	}
}

func TestTornSegmentHeader(t *testing.T) {
	for _, size := range []int{0, 1, 16, segHeaderSize - 1} {
		dir := t.TempDir()
		l := mustOpen(t, dir, Options{SegmentSize: MinSegmentSize})
		var want []event.Event
		for i := 0; l.mu.segs[len(l.mu.segs)-1].base == 1; i++ {
			e := testEvent("s", i)
			mustAppend(t, l, e)
			want = append(want, e)
		}
		// Drop the one event in the new segment and tear its header, as a
		// crash while creating it would.
		want = want[:len(want)-1]
		base := l.mu.segs[1].base
		l.Close()
		if err := os.WriteFile(segPath(dir, base), segHeader(base)[:size], 0o644); err != nil {
			t.Fatal(err)
		}
		l = mustOpen(t, dir, Options{SegmentSize: MinSegmentSize})
		if rec := l.Recovered(); rec.Head != base-1 || rec.TornSegment != segName(base) {
			t.Fatalf("size=%d: recovered %+v", size, rec)
		}
		checkEvents(t, readAll(t, l), want)
		mustAppend(t, l, testEvent("s", 0))
		l.Close()
	}
}

// multiSegment builds a log of several small segments.
func multiSegment(t *testing.T, dir string, n int) []event.Event {
	t.Helper()
	l := mustOpen(t, dir, Options{SegmentSize: MinSegmentSize, IndexInterval: 200})
	var want []event.Event
	for i := 0; i < n; {
		batch := make([]event.Event, 1+i%3)
		for j := range batch {
			batch[j] = testEvent(fmt.Sprintf("s%d", (i+j)%5), i+j)
			if (i+j)%7 == 0 {
				// A stream of one event: most end in an older segment.
				batch[j] = testEvent(fmt.Sprintf("once%d", i+j), i+j)
			}
		}
		mustAppend(t, l, batch...)
		want = append(want, batch...)
		i += len(batch)
	}
	if len(l.mu.segs) < 5 {
		t.Fatalf("only %d segments", len(l.mu.segs))
	}
	l.Close()
	return want
}

func TestSegmentRollover(t *testing.T) {
	dir := t.TempDir()
	want := multiSegment(t, dir, 600)
	opts := Options{SegmentSize: MinSegmentSize, IndexInterval: 200}
	l := mustOpen(t, dir, opts)
	defer l.Close()
	if rec := l.Recovered(); rec.TornSegment != "" || len(rec.RebuiltIndexes) != 0 {
		t.Fatalf("clean log recovered %+v", rec)
	}
	checkEvents(t, readAll(t, l), want)
	ctx := context.Background()
	// Reads from every position, with small maxima, cross segments.
	for from := uint64(1); from <= uint64(len(want)); from += 7 {
		evs, err := l.Read(ctx, from, 5)
		if err != nil || len(evs) == 0 || evs[0].Position != from {
			t.Fatalf("Read(%d, 5) = %d events, %v", from, len(evs), err)
		}
	}
	// Every stream's version is its last event's position, whichever
	// segment holds it.
	last := map[string]uint64{}
	for i, e := range want {
		last[e.Stream] = uint64(i + 1)
	}
	for stream, pos := range last {
		if v, _ := l.StreamVersion(ctx, stream); v != pos {
			t.Fatalf("StreamVersion(%s) = %d, want %d", stream, v, pos)
		}
	}
	// Streams span segments.
	for s := 0; s < 5; s++ {
		stream := fmt.Sprintf("s%d", s)
		var wantPos []uint64
		for i, e := range want {
			if e.Stream == stream {
				wantPos = append(wantPos, uint64(i+1))
			}
		}
		got, err := l.ReadStream(ctx, stream, wantPos[10], 50)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 50 {
			t.Fatalf("ReadStream(%s) = %d events, want 50", stream, len(got))
		}
		for i, e := range got {
			if e.Position != wantPos[10+i] || !bytes.Equal(e.Payload, want[e.Position-1].Payload) {
				t.Fatalf("ReadStream(%s)[%d] at %d, want %d", stream, i, e.Position, wantPos[10+i])
			}
		}
		if v, _ := l.StreamVersion(ctx, stream); v != wantPos[len(wantPos)-1] {
			t.Fatalf("StreamVersion(%s) = %d, want %d", stream, v, wantPos[len(wantPos)-1])
		}
	}
}

// TestSealedStillPreallocated: a crash between sealing a segment and
// writing its index file leaves the segment with zeros after its data.
func TestSealedStillPreallocated(t *testing.T) {
	dir := t.TempDir()
	want := multiSegment(t, dir, 300)
	p := segPath(dir, 1)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, idxName(1))); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, fi.Size()+4096); err != nil {
		t.Fatal(err)
	}
	opts := Options{SegmentSize: MinSegmentSize, IndexInterval: 200}
	l := mustOpen(t, dir, opts)
	if rec := l.Recovered(); rec.TornSegment != "" || len(rec.RebuiltIndexes) != 1 {
		t.Fatalf("recovered %+v, want one index rebuilt", rec)
	}
	checkEvents(t, readAll(t, l), want)
	l.Close()
	if got, _ := os.Stat(p); got.Size() != fi.Size() {
		t.Fatalf("sealed segment size %d, want %d", got.Size(), fi.Size())
	}
	l = mustOpen(t, dir, opts)
	defer l.Close()
	if rec := l.Recovered(); len(rec.RebuiltIndexes) != 0 {
		t.Fatalf("second open recovered %+v", rec)
	}
}

func TestIndexRebuild(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(path string) error
	}{
		{"missing", os.Remove},
		{"garbled", func(p string) error {
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			return os.WriteFile(p, b, 0o644)
		}},
		{"truncated", func(p string) error { return os.Truncate(p, 30) }},
		{"empty", func(p string) error { return os.Truncate(p, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			want := multiSegment(t, dir, 300)
			idxs, _ := filepath.Glob(filepath.Join(dir, "*"+idxSuffix))
			if len(idxs) < 3 {
				t.Fatalf("%d index files", len(idxs))
			}
			for _, p := range idxs[:2] {
				if err := tc.spoil(p); err != nil {
					t.Fatal(err)
				}
			}
			opts := Options{SegmentSize: MinSegmentSize, IndexInterval: 200}
			l := mustOpen(t, dir, opts)
			if rec := l.Recovered(); len(rec.RebuiltIndexes) != 2 {
				t.Fatalf("rebuilt %v, want 2", rec.RebuiltIndexes)
			}
			checkEvents(t, readAll(t, l), want)
			l.Close()
			l = mustOpen(t, dir, opts)
			if rec := l.Recovered(); len(rec.RebuiltIndexes) != 0 {
				t.Fatalf("second open rebuilt %v", rec.RebuiltIndexes)
			}
			checkEvents(t, readAll(t, l), want)
			l.Close()
		})
	}
}

// flipFrameByte flips a byte in the middle of the i-th frame of a segment.
func flipFrameByte(t *testing.T, path string, i int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := segHeaderSize
	for ; i > 0; i-- {
		off += frameHeaderSize + int(le.Uint32(b[off:]))
	}
	b[off+frameHeaderSize+int(le.Uint32(b[off:]))/2] ^= 0x10
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptSealedSegment(t *testing.T) {
	dir := t.TempDir()
	multiSegment(t, dir, 300)
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	flipFrameByte(t, segs[1], 1)
	opts := Options{SegmentSize: MinSegmentSize, IndexInterval: 200}
	l := mustOpen(t, dir, opts)
	if _, err := readAllErr(l); !errors.Is(err, eventlog.ErrCorrupt) {
		t.Fatalf("read over corrupt frame: %v, want ErrCorrupt", err)
	}
	// Reads that do not touch the frame still work.
	if _, err := l.Read(context.Background(), 1, 3); err != nil {
		t.Fatalf("Read(1): %v", err)
	}
	l.Close()
	// Without the index file, Open must scan the segment and refuses to
	// drop the acknowledged events after the bad frame.
	base, _ := parseBase(filepath.Base(segs[1]), segSuffix)
	os.Remove(filepath.Join(dir, idxName(base)))
	if _, err := Open(dir, Options{Logger: quiet}); !errors.Is(err, eventlog.ErrCorrupt) {
		t.Fatalf("Open with corrupt sealed segment: %v, want ErrCorrupt", err)
	}
}

func TestCorruptMissingSegment(t *testing.T) {
	dir := t.TempDir()
	multiSegment(t, dir, 300)
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	os.Remove(segs[2])
	if _, err := Open(dir, Options{Logger: quiet}); !errors.Is(err, eventlog.ErrCorrupt) {
		t.Fatalf("Open with a missing segment: %v, want ErrCorrupt", err)
	}
}

func TestWrongCodecVersion(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	mustAppend(t, l, testEvent("s", 1))
	size := dataSize(l, 0)
	l.Close()
	// Rewrite the event's codec version byte and fix the checksum, as a
	// newer twinlog would have written it.
	p := segPath(dir, 1)
	b, _ := os.ReadFile(p)
	f := b[segHeaderSize:size]
	f[frameHeaderSize+2] = 99 // back-pointer, length, then the version byte
	le.PutUint32(f[4:], crc32.Update(crc32.Checksum(f[0:4], castagnoli), castagnoli, f[8:]))
	os.WriteFile(p, b, 0o644)
	if _, err := Open(dir, Options{Logger: quiet}); !errors.Is(err, event.ErrVersion) {
		t.Fatalf("Open: %v, want event.ErrVersion", err)
	}
}

func TestFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inject func(*faultFS)
		opts   Options
	}{
		{"write-error", func(f *faultFS) { f.writeErr = true }, Options{}},
		{"short-write", func(f *faultFS) { f.writeErr, f.short = true, true }, Options{}},
		{"sync-error", func(f *faultFS) { f.syncErr = true }, Options{}},
		{"create-segment-error", func(f *faultFS) { f.createErr = true }, Options{SegmentSize: MinSegmentSize}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ffs := newFaultFS()
			opts := tc.opts
			opts.FS = ffs
			l := mustOpen(t, dir, opts)
			var acked []event.Event
			for i := 0; i < 20; i++ {
				e := testEvent("s", i)
				mustAppend(t, l, e)
				acked = append(acked, e)
			}
			ffs.set(tc.inject)
			// Concurrent appenders: whoever shares the failing group fails.
			var wg sync.WaitGroup
			var mu sync.Mutex
			var failed int
			var unacked []event.Event
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 40; i++ {
						e := testEvent(fmt.Sprintf("g%d", g), i+100)
						_, err := l.Append(context.Background(), []event.Event{e, e})
						mu.Lock()
						switch {
						case err == nil:
							acked = append(acked, e, e)
						case errors.Is(err, eventlog.ErrFailed):
							failed++
							unacked = append(unacked, e)
						default:
							t.Errorf("Append: %v, want nil or ErrFailed", err)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if failed == 0 {
				t.Fatal("no append failed")
			}
			if _, err := l.Append(context.Background(), []event.Event{testEvent("s", 0)}); !errors.Is(err, eventlog.ErrFailed) {
				t.Fatalf("Append on failed log: %v, want ErrFailed", err)
			}
			// Reads of acknowledged events still work.
			if got := readAll(t, l); len(got) != len(acked) {
				t.Fatalf("failed log reads %d events, %d acked", len(got), len(acked))
			}
			l.Close()

			l = mustOpen(t, dir, Options{SegmentSize: tc.opts.SegmentSize})
			defer l.Close()
			got := readAll(t, l)
			// Every acknowledged event, in order; after them at most whole
			// unacknowledged batches.
			byPayload := make(map[string]bool)
			for _, e := range acked {
				byPayload[string(e.Payload)] = true
			}
			n := 0
			for _, e := range got {
				if byPayload[string(e.Payload)] {
					n++
				}
			}
			if n != len(acked) {
				t.Fatalf("reopened log has %d of %d acknowledged events", n, len(acked))
			}
			if extra := len(got) - len(acked); extra%2 != 0 || extra > 2*len(unacked) {
				t.Fatalf("reopened log has %d unacknowledged events", extra)
			}
		})
	}
}
