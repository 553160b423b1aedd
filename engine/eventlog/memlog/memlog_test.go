package memlog_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/logtest"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
)

func TestConformance(t *testing.T) {
	logtest.Run(t, logtest.Backend{New: func(t *testing.T) eventlog.Log { return memlog.New(memlog.Options{}) }})
}

// TestManyChunks reads across the boundaries of the chunks that hold the
// events.
func TestManyChunks(t *testing.T) {
	var now int64
	l := memlog.New(memlog.Options{Now: func() time.Time { now += 1000; return time.Unix(0, now) }})
	ctx := context.Background()
	const n = 3*4096 + 17
	for i := 0; i < n; {
		var batch []event.Event
		for j := 0; j < 7 && i < n; j, i = j+1, i+1 {
			batch = append(batch, event.Event{Stream: "s" + strconv.Itoa(i%3), Type: "t", Payload: []byte(strconv.Itoa(i))})
		}
		if _, err := l.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	for _, from := range []uint64{1, 4095, 4096, 4097, 8192, n} {
		evs, err := l.Read(ctx, from, 3)
		if err != nil {
			t.Fatal(err)
		}
		for k, e := range evs {
			if e.Position != from+uint64(k) || string(e.Payload) != strconv.Itoa(int(e.Position)-1) {
				t.Fatalf("read from %d: event %d is %d %q", from, k, e.Position, e.Payload)
			}
		}
	}
	evs, err := l.ReadStream(ctx, "s1", 4090, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 || evs[0].Position < 4090 || (evs[0].Position-1)%3 != 1 {
		t.Fatalf("stream s1 from 4090 starts at %+v", evs[0])
	}
	last := evs[len(evs)-1]
	pos, err := l.SeekTime(ctx, time.Unix(0, last.Time))
	if err != nil || pos > last.Position || pos+7 <= last.Position {
		t.Fatalf("SeekTime(%d) = %d, %v; want within the batch of %d", last.Time, pos, err, last.Position)
	}
}
