// Package logtest is the conformance suite every eventlog.Log backend passes.
//
// A backend's test calls Run with a Backend describing how to make a fresh log
// and, for persistent backends, how to reopen one:
//
//	func TestConformance(t *testing.T) {
//		logtest.Run(t, logtest.Backend{New: func(t *testing.T) eventlog.Log { ... }})
//	}
package logtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
)

// Backend describes the log under test.
type Backend struct {
	// New returns a fresh, empty log. The suite closes it.
	New func(t *testing.T) eventlog.Log
	// Reopen closes l and opens the same log again. Nil for backends that
	// do not persist across Close.
	Reopen func(t *testing.T, l eventlog.Log) eventlog.Log
}

// Run runs the whole suite.
func Run(t *testing.T, b Backend) {
	tests := []struct {
		name string
		fn   func(*testing.T, Backend)
	}{
		{"Empty", testEmpty},
		{"AppendRead", testAppendRead},
		{"Invalid", testInvalid},
		{"Expect", testExpect},
		{"ConflictWritesNothing", testConflictWritesNothing},
		{"ReadStream", testReadStream},
		{"StreamNames", testStreamNames},
		{"SeekTime", testSeekTime},
		{"Subscribe", testSubscribe},
		{"SubscribeClose", testSubscribeClose},
		{"ConcurrentAppend", testConcurrentAppend},
		{"ConcurrentExpect", testConcurrentExpect},
		{"LargePayload", testLargePayload},
		{"Reopen", testReopen},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

func open(t *testing.T, b Backend) eventlog.Log {
	t.Helper()
	l := b.New(t)
	t.Cleanup(func() { l.Close() })
	return l
}

func ev(stream, typ string, payload string) event.Event {
	return event.Event{Stream: stream, Type: typ, Actor: "test", CorrelationID: "c", CausationID: "x",
		SchemaVersion: 1, Payload: []byte(payload)}
}

func mustAppend(t *testing.T, l eventlog.Log, batch []event.Event, expect ...eventlog.Expect) eventlog.Result {
	t.Helper()
	r, err := l.Append(context.Background(), batch, expect...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return r
}

func readAll(t *testing.T, l eventlog.Log) []event.Event {
	t.Helper()
	ctx := context.Background()
	var out []event.Event
	for from := uint64(1); ; {
		evs, err := l.Read(ctx, from, 1000)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		if len(evs) == 0 {
			return out
		}
		out = append(out, evs...)
		from = evs[len(evs)-1].Position + 1
	}
}

func sameEvent(t *testing.T, got, want event.Event) {
	t.Helper()
	if got.Stream != want.Stream || got.Type != want.Type || got.Actor != want.Actor ||
		got.CausationID != want.CausationID || got.CorrelationID != want.CorrelationID ||
		got.SchemaVersion != want.SchemaVersion || !bytes.Equal(got.Payload, want.Payload) {
		t.Fatalf("event at %d = %+v, want %+v", got.Position, got, want)
	}
}

func head(t *testing.T, l eventlog.Log) uint64 {
	t.Helper()
	h, err := l.Head(context.Background())
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return h
}

func testEmpty(t *testing.T, b Backend) {
	l := open(t, b)
	ctx := context.Background()
	if h := head(t, l); h != 0 {
		t.Fatalf("head = %d, want 0", h)
	}
	evs, err := l.Read(ctx, 1, 10)
	if err != nil || len(evs) != 0 {
		t.Fatalf("Read(1) = %d events, %v; want none, nil", len(evs), err)
	}
	if _, err := l.Read(ctx, 3, 10); !errors.Is(err, eventlog.ErrOutOfRange) {
		t.Fatalf("Read(3) err = %v, want ErrOutOfRange", err)
	}
	if v, err := l.StreamVersion(ctx, "twin/x"); err != nil || v != eventlog.NoStream {
		t.Fatalf("StreamVersion = %d, %v; want NoStream", v, err)
	}
	if p, err := l.SeekTime(ctx, time.Unix(0, 0)); err != nil || p != 1 {
		t.Fatalf("SeekTime = %d, %v; want 1", p, err)
	}
}

func testAppendRead(t *testing.T, b Backend) {
	l := open(t, b)
	var want []event.Event
	var lastT int64
	for i := 0; i < 50; i++ {
		batch := make([]event.Event, 1+i%7)
		for j := range batch {
			batch[j] = ev(fmt.Sprintf("twin/t%d", (i+j)%5), "twin.patched", fmt.Sprintf(`{"i":%d,"j":%d}`, i, j))
		}
		before := head(t, l)
		r := mustAppend(t, l, batch)
		if r.First != before+1 || r.Last != before+uint64(len(batch)) {
			t.Fatalf("append %d: positions %d..%d, want %d..%d", i, r.First, r.Last, before+1, before+uint64(len(batch)))
		}
		if r.Time < lastT {
			t.Fatalf("append %d: time %d before previous %d", i, r.Time, lastT)
		}
		lastT = r.Time
		want = append(want, batch...)
	}
	got := readAll(t, l)
	if len(got) != len(want) {
		t.Fatalf("read %d events, want %d", len(got), len(want))
	}
	var prevT int64
	for i := range got {
		if got[i].Position != uint64(i+1) {
			t.Fatalf("event %d has position %d", i, got[i].Position)
		}
		if got[i].Time < prevT {
			t.Fatalf("time decreases at %d", got[i].Position)
		}
		prevT = got[i].Time
		sameEvent(t, got[i], want[i])
	}
	// Reads from the middle, with a small max.
	mid, err := l.Read(context.Background(), 17, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(mid) == 0 || len(mid) > 3 || mid[0].Position != 17 {
		t.Fatalf("Read(17, 3) = %d events starting at %v", len(mid), mid)
	}
	// Returned events are the caller's: modifying them changes nothing.
	mid[0].Payload[0] = 'X'
	again, _ := l.Read(context.Background(), 17, 1)
	if again[0].Payload[0] == 'X' {
		t.Fatal("Read returned memory shared with the log")
	}
}

func testInvalid(t *testing.T, b Backend) {
	l := open(t, b)
	ctx := context.Background()
	bad := []struct {
		name  string
		batch []event.Event
	}{
		{"empty", nil},
		{"position", []event.Event{{Stream: "s", Type: "t", Position: 4}}},
		{"no-stream", []event.Event{{Type: "t"}}},
		{"no-type", []event.Event{{Stream: "s"}}},
		{"second-bad", []event.Event{ev("s", "t", "ok"), {Stream: "s"}}},
	}
	for _, tc := range bad {
		if _, err := l.Append(ctx, tc.batch); !errors.Is(err, eventlog.ErrInvalid) {
			t.Fatalf("%s: err = %v, want ErrInvalid", tc.name, err)
		}
	}
	if h := head(t, l); h != 0 {
		t.Fatalf("head = %d after invalid appends, want 0", h)
	}
}

func testExpect(t *testing.T, b Backend) {
	l := open(t, b)
	ctx := context.Background()
	r1 := mustAppend(t, l, []event.Event{ev("twin/a", "twin.created", "1")}, eventlog.Expect{Stream: "twin/a", Version: eventlog.NoStream})
	mustAppend(t, l, []event.Event{ev("twin/b", "twin.created", "1")})
	// Creating twin/a again must fail.
	_, err := l.Append(ctx, []event.Event{ev("twin/a", "twin.created", "2")}, eventlog.Expect{Stream: "twin/a", Version: eventlog.NoStream})
	var ce *eventlog.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("err = %v, want *ConflictError", err)
	}
	if ce.Stream != "twin/a" || ce.Actual != r1.Last || ce.Expected != eventlog.NoStream {
		t.Fatalf("conflict = %+v, want stream twin/a actual %d", ce, r1.Last)
	}
	// The right version passes, and advances.
	r3 := mustAppend(t, l, []event.Event{ev("twin/a", "twin.patched", "3")}, eventlog.Expect{Stream: "twin/a", Version: r1.Last})
	if v, _ := l.StreamVersion(ctx, "twin/a"); v != r3.Last {
		t.Fatalf("version = %d, want %d", v, r3.Last)
	}
	// A stale version fails.
	if _, err := l.Append(ctx, []event.Event{ev("twin/a", "twin.patched", "4")}, eventlog.Expect{Stream: "twin/a", Version: r1.Last}); !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("stale expect err = %v", err)
	}
	// An expectation on a stream the batch does not write (a guard).
	bv, _ := l.StreamVersion(ctx, "twin/b")
	mustAppend(t, l, []event.Event{ev("twin/c", "rel.created", "5")},
		eventlog.Expect{Stream: "twin/b", Version: bv}, eventlog.Expect{Stream: "twin/c", Version: eventlog.NoStream})
	if _, err := l.Append(ctx, []event.Event{ev("twin/d", "rel.created", "6")},
		eventlog.Expect{Stream: "twin/b", Version: bv + 100}); !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("guard expect err = %v", err)
	}
	// A batch writing one stream several times, expectation checked before it.
	v, _ := l.StreamVersion(ctx, "twin/a")
	r := mustAppend(t, l, []event.Event{ev("twin/a", "p", "7"), ev("twin/a", "p", "8")}, eventlog.Expect{Stream: "twin/a", Version: v})
	if got, _ := l.StreamVersion(ctx, "twin/a"); got != r.Last {
		t.Fatalf("version after multi-event batch = %d, want %d", got, r.Last)
	}
}

func testConflictWritesNothing(t *testing.T, b Backend) {
	l := open(t, b)
	ctx := context.Background()
	mustAppend(t, l, []event.Event{ev("twin/a", "twin.created", "1")})
	batch := []event.Event{ev("twin/x", "t", "1"), ev("twin/y", "t", "2"), ev("twin/a", "t", "3")}
	_, err := l.Append(ctx, batch, eventlog.Expect{Stream: "twin/x", Version: eventlog.NoStream},
		eventlog.Expect{Stream: "twin/a", Version: 99})
	if !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	if h := head(t, l); h != 1 {
		t.Fatalf("head = %d after conflicting batch, want 1", h)
	}
	for _, s := range []string{"twin/x", "twin/y"} {
		if v, _ := l.StreamVersion(ctx, s); v != eventlog.NoStream {
			t.Fatalf("stream %s has version %d after conflicting batch", s, v)
		}
	}
	// The log still works after a conflict.
	r := mustAppend(t, l, batch)
	if r.First != 2 {
		t.Fatalf("next append at %d, want 2", r.First)
	}
}

func testReadStream(t *testing.T, b Backend) {
	l := open(t, b)
	ctx := context.Background()
	var want []uint64
	for i := 0; i < 30; i++ {
		s := "twin/other"
		if i%3 == 0 {
			s = "twin/mine"
		}
		r := mustAppend(t, l, []event.Event{ev(s, "p", fmt.Sprint(i))})
		if s == "twin/mine" {
			want = append(want, r.First)
		}
	}
	got, err := l.ReadStream(ctx, "twin/mine", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("ReadStream = %d events, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Position != want[i] || got[i].Stream != "twin/mine" {
			t.Fatalf("event %d at %d stream %q, want %d", i, got[i].Position, got[i].Stream, want[i])
		}
	}
	part, err := l.ReadStream(ctx, "twin/mine", want[3], 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(part) != 2 || part[0].Position != want[3] || part[1].Position != want[4] {
		t.Fatalf("ReadStream(from %d, 2) = %v", want[3], positions(part))
	}
	if none, err := l.ReadStream(ctx, "twin/none", 0, 10); err != nil || len(none) != 0 {
		t.Fatalf("unknown stream: %d events, %v", len(none), err)
	}
}

func positions(evs []event.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Position
	}
	return out
}

// testStreamNames checks that stream names are opaque: any bytes round-trip
// and distinct names never collide.
func testStreamNames(t *testing.T, b Backend) {
	l := open(t, b)
	ctx := context.Background()
	names := []string{"twin/a.b", "twin/a_b", "twin/a b", "twin/*", "twin/>", "twin/ä-ü", "models",
		"twin/a/b/c", "twin/..", "twin/$SYS", "twin/A.B", "twin/a%2Eb", "x"}
	for _, n := range names {
		mustAppend(t, l, []event.Event{ev(n, "t", n)}, eventlog.Expect{Stream: n, Version: eventlog.NoStream})
	}
	for _, n := range names {
		evs, err := l.ReadStream(ctx, n, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Stream != n || string(evs[0].Payload) != n {
			t.Fatalf("stream %q read back %d events: %+v", n, len(evs), evs)
		}
	}
}

func testSeekTime(t *testing.T, b Backend) {
	l := open(t, b)
	ctx := context.Background()
	var results []eventlog.Result
	for i := 0; i < 5; i++ {
		results = append(results, mustAppend(t, l, []event.Event{ev("s", "t", "a"), ev("s", "t", "b")}))
		time.Sleep(3 * time.Millisecond)
	}
	for _, r := range results {
		p, err := l.SeekTime(ctx, time.Unix(0, r.Time))
		if err != nil {
			t.Fatal(err)
		}
		// The first event at or after r.Time is r.First, unless an earlier
		// batch shared the timestamp.
		if p > r.First {
			t.Fatalf("SeekTime(%d) = %d, want <= %d", r.Time, p, r.First)
		}
		evs, _ := l.Read(ctx, p, 1)
		if len(evs) != 1 || evs[0].Time < r.Time {
			t.Fatalf("SeekTime(%d) = %d whose time is earlier", r.Time, p)
		}
		if p > 1 {
			prev, _ := l.Read(ctx, p-1, 1)
			if prev[0].Time >= r.Time {
				t.Fatalf("SeekTime(%d) = %d but %d is not earlier", r.Time, p, p-1)
			}
		}
	}
	last := results[len(results)-1]
	if p, _ := l.SeekTime(ctx, time.Unix(0, last.Time+1)); p != last.Last+1 {
		t.Fatalf("SeekTime past the end = %d, want %d", p, last.Last+1)
	}
	if p, _ := l.SeekTime(ctx, time.Unix(0, 0)); p != 1 {
		t.Fatalf("SeekTime(0) = %d, want 1", p)
	}
}

func testSubscribe(t *testing.T, b Backend) {
	l := open(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < 10; i++ {
		mustAppend(t, l, []event.Event{ev("s", "t", fmt.Sprint(i))})
	}
	sub, err := l.Subscribe(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	const total = 200
	done := make(chan error, 1)
	go func() {
		for i := 10; i < total; i++ {
			if _, err := l.Append(ctx, []event.Event{ev("s", "t", fmt.Sprint(i))}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	next := uint64(4)
	for next <= total {
		evs, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("Next at %d: %v", next, err)
		}
		for _, e := range evs {
			if e.Position != next {
				t.Fatalf("got position %d, want %d", e.Position, next)
			}
			if string(e.Payload) != fmt.Sprint(next-1) {
				t.Fatalf("payload at %d = %q", next, e.Payload)
			}
			next++
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Next blocks when caught up, and returns when ctx ends.
	short, c2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer c2()
	if _, err := sub.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next when caught up: %v, want deadline exceeded", err)
	}
}

func testSubscribeClose(t *testing.T, b Backend) {
	l := open(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := l.Subscribe(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := sub.Next(ctx)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	sub.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, eventlog.ErrClosed) {
			t.Fatalf("Next after Close: %v, want ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("Next did not return after Close")
	}
}

func testConcurrentAppend(t *testing.T, b Backend) {
	l := open(t, b)
	const writers, per = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				batch := []event.Event{ev(fmt.Sprintf("w%d", w), "t", fmt.Sprintf("%d/%d/a", w, i)),
					ev(fmt.Sprintf("w%d", w), "t", fmt.Sprintf("%d/%d/b", w, i))}
				if _, err := l.Append(context.Background(), batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := readAll(t, l)
	if len(got) != writers*per*2 {
		t.Fatalf("read %d events, want %d", len(got), writers*per*2)
	}
	// Batches are contiguous and each writer's batches are in its order.
	nextI := make(map[string]int)
	for i := 0; i < len(got); i += 2 {
		a, bb := string(got[i].Payload), string(got[i+1].Payload)
		var w, n int
		var s string
		fmt.Sscanf(a, "%d/%d/%s", &w, &n, &s)
		if s != "a" || bb != fmt.Sprintf("%d/%d/b", w, n) {
			t.Fatalf("batch split at %d: %q then %q", got[i].Position, a, bb)
		}
		key := fmt.Sprint(w)
		if nextI[key] != n {
			t.Fatalf("writer %d batch %d out of order (want %d)", w, n, nextI[key])
		}
		nextI[key]++
	}
}

func testConcurrentExpect(t *testing.T, b Backend) {
	l := open(t, b)
	ctx := context.Background()
	// Many writers race to advance one stream with read-modify-write; each
	// version is won by exactly one writer.
	const writers, rounds = 8, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				v, err := l.StreamVersion(ctx, "twin/hot")
				if err != nil {
					t.Error(err)
					return
				}
				_, err = l.Append(ctx, []event.Event{ev("twin/hot", "t", "x")}, eventlog.Expect{Stream: "twin/hot", Version: v})
				switch {
				case err == nil:
					mu.Lock()
					wins++
					mu.Unlock()
				case errors.Is(err, eventlog.ErrConflict):
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	evs, err := l.ReadStream(ctx, "twin/hot", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != wins {
		t.Fatalf("stream has %d events, %d appends succeeded", len(evs), wins)
	}
	if wins == 0 {
		t.Fatal("no append succeeded")
	}
}

func testLargePayload(t *testing.T, b Backend) {
	l := open(t, b)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<14) // 256 KiB
	e := ev("s", "big", "")
	e.Payload = big
	mustAppend(t, l, []event.Event{ev("s", "small", "x"), e, ev("s", "small", "y")})
	got := readAll(t, l)
	if len(got) != 3 || !bytes.Equal(got[1].Payload, big) || string(got[2].Payload) != "y" {
		t.Fatalf("large payload did not round-trip (%d events)", len(got))
	}
}

func testReopen(t *testing.T, b Backend) {
	if b.Reopen == nil {
		t.Skip("backend does not persist across Close")
	}
	l := b.New(t)
	var want []event.Event
	for i := 0; i < 20; i++ {
		batch := []event.Event{ev(fmt.Sprintf("twin/%d", i%4), "t", fmt.Sprint(i))}
		mustAppend(t, l, batch)
		want = append(want, batch...)
	}
	v3, _ := l.StreamVersion(context.Background(), "twin/3")
	l = b.Reopen(t, l)
	t.Cleanup(func() { l.Close() })
	got := readAll(t, l)
	if len(got) != len(want) {
		t.Fatalf("after reopen: %d events, want %d", len(got), len(want))
	}
	for i := range got {
		sameEvent(t, got[i], want[i])
	}
	if v, _ := l.StreamVersion(context.Background(), "twin/3"); v != v3 {
		t.Fatalf("stream version after reopen = %d, want %d", v, v3)
	}
	// Appending continues the sequence and expectations still hold.
	r := mustAppend(t, l, []event.Event{ev("twin/3", "t", "more")}, eventlog.Expect{Stream: "twin/3", Version: v3})
	if r.First != uint64(len(want))+1 {
		t.Fatalf("append after reopen at %d, want %d", r.First, len(want)+1)
	}
	if r.Time < got[len(got)-1].Time {
		t.Fatalf("time went backwards across reopen")
	}
}

func testClosed(t *testing.T, b Backend) {
	l := b.New(t)
	mustAppend(t, l, []event.Event{ev("s", "t", "x")})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.Append(ctx, []event.Event{ev("s", "t", "y")}); !errors.Is(err, eventlog.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := l.Read(ctx, 1, 1); !errors.Is(err, eventlog.ErrClosed) {
		t.Fatalf("Read after Close: %v, want ErrClosed", err)
	}
}
