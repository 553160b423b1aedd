package filelog

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/logtest"
)

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"default", Options{}},
		{"small-segments", Options{SegmentSize: MinSegmentSize, IndexInterval: 128}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dirs := make(map[eventlog.Log]string)
			logtest.Run(t, logtest.Backend{
				New: func(t *testing.T) eventlog.Log {
					dir := t.TempDir()
					l, err := Open(dir, tc.opts)
					if err != nil {
						t.Fatal(err)
					}
					dirs[l] = dir
					return l
				},
				Reopen: func(t *testing.T, old eventlog.Log) eventlog.Log {
					if err := old.Close(); err != nil {
						t.Fatal(err)
					}
					l, err := Open(dirs[old], tc.opts)
					if err != nil {
						t.Fatal(err)
					}
					dirs[l] = dirs[old]
					return l
				},
			})
		})
	}
}

// TestLargeFrameAfterReopen reads back, after a reopen, an event larger than
// one read chunk stored among small ones (a frame the reader must fetch in
// one read beyond its chunk size).
func TestLargeFrameAfterReopen(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{})
	big := make([]byte, readChunkMax+readChunkMax/8)
	for i := range big {
		big[i] = byte(i)
	}
	for i := 0; i < 50; i++ {
		mustAppend(t, l, event.Event{Stream: "s", Type: "small", Payload: []byte("x")})
	}
	for i := 0; i < 3; i++ {
		mustAppend(t, l, event.Event{Stream: "s", Type: "big", Payload: big})
	}
	for i := 0; i < 50; i++ {
		mustAppend(t, l, event.Event{Stream: "s", Type: "small", Payload: []byte("y")})
	}
	l.Close()
	l = mustOpen(t, dir, Options{})
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	var got []event.Event
	go func() {
		var err error
		for from := uint64(1); from <= 103 && err == nil; {
			var evs []event.Event
			evs, err = l.Read(ctx, from, 4096)
			got = append(got, evs...)
			from += uint64(len(evs))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Read did not return")
	}
	if len(got) != 103 || !bytes.Equal(got[50].Payload, big) || !bytes.Equal(got[52].Payload, big) {
		t.Fatalf("read %d events; big payload intact: %v", len(got), len(got) > 50 && bytes.Equal(got[50].Payload, big))
	}
}

// countFS counts the bytes read from segment files.
type countFS struct {
	FS
	read atomic.Int64
}

func (c *countFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, segSuffix) {
		return f, err
	}
	return &countFile{File: f, fs: c}, nil
}

type countFile struct {
	File
	fs *countFS
}

func (f *countFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.fs.read.Add(int64(n))
	return n, err
}

// TestFollowerReadsNewFramesOnly checks that a reader following the head,
// reading from the position after the last it read, reads the frames
// appended since and not the bytes back to the sparse index entry before
// them; and that reads from any position, at a frame's start or within
// one, return the right events.
func TestFollowerReadsNewFramesOnly(t *testing.T) {
	cfs := &countFS{FS: OSFS}
	l := mustOpen(t, t.TempDir(), Options{FS: cfs})
	defer l.Close()
	ctx := context.Background()
	payload := bytes.Repeat([]byte("p"), 200)
	var want []string
	next := uint64(1)
	for i := range 400 {
		n := 1 + i%3 // frames of one to three events
		batch := make([]event.Event, n)
		for j := range batch {
			batch[j] = event.Event{Stream: fmt.Sprintf("s%d", i), Type: fmt.Sprintf("e%d", len(want)), Payload: payload}
			want = append(want, batch[j].Type)
		}
		mustAppend(t, l, batch...)
		before := cfs.read.Load()
		evs, err := l.Read(ctx, next, 0)
		if err != nil || len(evs) != n {
			t.Fatalf("frame %d: read %d events, %v", i, len(evs), err)
		}
		for j, ev := range evs {
			if ev.Type != want[int(next)-1+j] {
				t.Fatalf("position %d: %s, want %s", next+uint64(j), ev.Type, want[int(next)-1+j])
			}
		}
		// Each event's frame holds ~220 bytes per event; the sparse
		// index is up to 64 KiB behind.
		if got := cfs.read.Load() - before; got > int64(n)*400 {
			t.Fatalf("frame %d: reading %d new events read %d bytes", i, n, got)
		}
		next += uint64(n)
	}
	for from := uint64(1); from < next; from += 7 {
		evs, err := l.Read(ctx, from, 5)
		if err != nil || len(evs) != min(5, int(next-from)) {
			t.Fatalf("Read(%d, 5): %d events, %v", from, len(evs), err)
		}
		for j, ev := range evs {
			if ev.Type != want[int(from)-1+j] || ev.Position != from+uint64(j) {
				t.Fatalf("Read(%d): event %d is %s at %d", from, j, ev.Type, ev.Position)
			}
		}
	}
}
