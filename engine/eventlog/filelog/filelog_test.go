package filelog

import (
	"bytes"
	"context"
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
