package filelog

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/twinlog/twinlog/engine/eventlog"
)

// seedSegment returns the bytes of a small valid one-segment log.
func seedSegment(f *testing.F, batches int) []byte {
	dir := f.TempDir()
	l, err := Open(dir, Options{NoSync: true, Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	for i := 0; i < batches; i++ {
		mustAppend(f, l, testEvent("s", i), testEvent("t", i))
	}
	size := dataSize(l, 0)
	l.Close()
	b, err := os.ReadFile(segPath(dir, 1))
	if err != nil {
		f.Fatal(err)
	}
	return b[:size]
}

// FuzzRecover feeds arbitrary bytes to Open as the only segment file. Open
// must not panic; when it succeeds, every frame left in the file must be
// valid and every event readable.
func FuzzRecover(f *testing.F) {
	valid := seedSegment(f, 3)
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(append(bytes.Clone(valid), 0, 0, 0, 0, 0, 0, 0, 0))
	f.Add(segHeader(1))
	f.Add(segHeader(1)[:10])
	f.Add([]byte{})
	flipped := bytes.Clone(valid)
	flipped[len(flipped)-3] ^= 1
	f.Add(flipped)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, Options{NoSync: true, Logger: quiet})
		if err != nil {
			return
		}
		defer l.Close()
		evs, err := readAllErr(l)
		if err != nil {
			if errors.Is(err, eventlog.ErrCorrupt) {
				t.Fatalf("recovered log has corrupt records: %v", err)
			}
			t.Fatalf("read recovered log: %v", err)
		}
		if h := l.Recovered().Head; uint64(len(evs)) != h {
			t.Fatalf("read %d events, head %d", len(evs), h)
		}
		// The file now holds a valid header and valid frames only.
		b, err := os.ReadFile(filepath.Join(dir, segName(1)))
		if err != nil {
			t.Fatal(err)
		}
		if err := checkSegHeader(b, 1); err != nil {
			t.Fatalf("header after recovery: %v", err)
		}
		n := 0
		for p := segHeaderSize; p < len(b); {
			if zeroHeader(b[p:]) {
				// The preallocated rest: zeros to the end.
				if len(bytes.TrimRight(b[p:], "\x00")) > 0 {
					t.Fatalf("non-zero bytes after the data at %d", p)
				}
				break
			}
			fr, ferr := parseFrame(b[p:])
			if ferr != nil {
				t.Fatalf("frame at %d after recovery: %v", p, ferr)
			}
			p += fr.size
			n += fr.count
		}
		if n != len(evs) {
			t.Fatalf("file holds %d events, read %d", n, len(evs))
		}
		if _, err := l.Append(context.Background(), evs[:min(len(evs), 1)]); len(evs) > 0 && err == nil {
			t.Fatal("appending events with positions preset succeeded")
		}
	})
}

// FuzzIndex feeds arbitrary bytes to the index file decoder.
func FuzzIndex(f *testing.F) {
	m := &segMeta{base: 1, size: 1000, last: 9, lastTime: 5,
		index:   []indexEntry{{1, 1, segHeaderSize}, {5, 3, 500}},
		streams: map[string]uint64{"a": 3, "b": 9}}
	f.Add(encodeIndex(m), int64(1000))
	f.Add([]byte(idxMagic), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		m, err := decodeIndex(b, 1, size)
		if err != nil {
			return
		}
		m.streams = map[string]uint64{}
		m.table.each(func(name []byte, pos uint64) { m.streams[string(name)] = pos })
		if got := encodeIndex(m); len(got) != len(b) {
			t.Fatalf("re-encoded index has %d bytes, was %d", len(got), len(b))
		}
	})
}
