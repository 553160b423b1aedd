package natslog_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/natslog"
	"github.com/twinlog/twinlog/engine/eventlog/natslog/natstest"
)

// topology is a set of servers the behaviour tests run against.
type topology struct {
	name     string
	url      string
	replicas int
}

// topologies starts a single server and, unless -short, a 3-node cluster.
func topologies(t *testing.T) []topology {
	t.Helper()
	s := natstest.RunServer(t, natstest.Options{})
	tops := []topology{{"single", s.URL, 1}}
	if !testing.Short() {
		c := natstest.RunCluster(t, 3, natstest.Options{})
		tops = append(tops, topology{"cluster", c.URL, 3})
	}
	return tops
}

var streamSeq struct {
	sync.Mutex
	n int
}

// openLog opens a Log on a stream of its own and returns it with its
// connection.
func openLog(t *testing.T, top topology, opts natslog.Options) (*natslog.Log, *nats.Conn) {
	t.Helper()
	streamSeq.Lock()
	streamSeq.n++
	n := streamSeq.n
	streamSeq.Unlock()
	if opts.Stream == "" {
		opts.Stream = fmt.Sprintf("B%d", n)
		opts.Subject = fmt.Sprintf("b%d", n)
	}
	opts.Replicas = top.replicas
	nc, err := nats.Connect(top.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := natslog.Open(ctx, nc, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, nc
}

func ev(stream, payload string) event.Event {
	return event.Event{Stream: stream, Type: "t", Actor: "test", Payload: []byte(payload)}
}

func batchOf(n int, stream string) []event.Event {
	b := make([]event.Event, n)
	for i := range b {
		b[i] = ev(stream, fmt.Sprint(i))
	}
	return b
}

// streamState reads the stream's state through the JetStream API.
func streamState(t *testing.T, nc *nats.Conn, name string) jetstream.StreamState {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}

// checkContiguous checks that the stream holds exactly want messages at
// sequences 1..want, with nothing deleted or skipped.
func checkContiguous(t *testing.T, l *natslog.Log, nc *nats.Conn, name string, want uint64) {
	t.Helper()
	st := streamState(t, nc, name)
	if st.Msgs != want || st.LastSeq != want || st.NumDeleted != 0 || (want > 0 && st.FirstSeq != 1) {
		t.Fatalf("stream state msgs=%d first=%d last=%d deleted=%d, want %d contiguous messages",
			st.Msgs, st.FirstSeq, st.LastSeq, st.NumDeleted, want)
	}
	ctx := context.Background()
	next := uint64(1)
	for {
		evs, err := l.Read(ctx, next, 0)
		if err != nil {
			t.Fatalf("Read(%d): %v", next, err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if e.Position != next {
				t.Fatalf("position %d, want %d", e.Position, next)
			}
			next++
		}
	}
	if next-1 != want {
		t.Fatalf("read %d events, want %d", next-1, want)
	}
}

// TestRejectionsLeaveNoGap checks that appends the server rejects (failed
// expectations of single publishes, of atomic batches and of guarded
// batches, oversized batches) consume no sequence number.
func TestRejectionsLeaveNoGap(t *testing.T) {
	for _, top := range topologies(t) {
		t.Run(top.name, func(t *testing.T) {
			l, nc := openLog(t, top, natslog.Options{})
			ctx := context.Background()
			var written uint64
			add := func(batch []event.Event, exp ...eventlog.Expect) {
				t.Helper()
				r, err := l.Append(ctx, batch, exp...)
				if err != nil {
					t.Fatalf("Append: %v", err)
				}
				written += uint64(len(batch))
				if r.Last != written {
					t.Fatalf("last = %d, want %d", r.Last, written)
				}
			}
			add(batchOf(3, "a"))
			for i := 0; i < 20; i++ {
				var err error
				switch i % 4 {
				case 0: // single publish, wrong expectation
					_, err = l.Append(ctx, batchOf(1, "a"), eventlog.Expect{Stream: "a", Version: 1})
				case 1: // atomic batch, wrong expectation on a later message's stream
					_, err = l.Append(ctx, []event.Event{ev("b", "x"), ev("c", "y"), ev("a", "z")},
						eventlog.Expect{Stream: "a", Version: 99})
				case 2: // atomic batch, wrong guard
					_, err = l.Append(ctx, batchOf(4, "d"), eventlog.Expect{Stream: "a", Version: 0})
				case 3: // more expectations than events: guarded by the head
					_, err = l.Append(ctx, batchOf(1, "e"), eventlog.Expect{Stream: "e", Version: 0},
						eventlog.Expect{Stream: "a", Version: 2})
				}
				if !errors.Is(err, eventlog.ErrConflict) {
					t.Fatalf("case %d: err = %v, want ErrConflict", i%4, err)
				}
				add(batchOf(1+i%3, "f"))
			}
			if _, err := l.Append(ctx, batchOf(natslog.DefaultMaxBatch+1, "g")); !errors.Is(err, eventlog.ErrInvalid) {
				t.Fatalf("oversized batch err = %v, want ErrInvalid", err)
			}
			add(batchOf(1, "h"))
			checkContiguous(t, l, nc, fmt.Sprint(streamOf(l)), written)
		})
	}
}

func streamOf(l *natslog.Log) string { return l.Options().Stream }

// TestExpectations covers how expectations map onto the batch: on the
// stream's first event, as guards on other events, and beyond the number of
// events (the head-guarded fallback).
func TestExpectations(t *testing.T) {
	for _, top := range topologies(t) {
		t.Run(top.name, func(t *testing.T) {
			l, _ := openLog(t, top, natslog.Options{})
			ctx := context.Background()
			// Positions: a=1, b=2, then x=3 a=4, b=5 y=6, z=7,8, w=9, u=10.
			l.Append(ctx, batchOf(1, "a"))
			l.Append(ctx, batchOf(1, "b"))
			tests := []struct {
				name   string
				batch  []event.Event
				expect []eventlog.Expect
				stream string // conflicting stream, "" for success
				actual uint64
			}{
				{"later-event", []event.Event{ev("x", "1"), ev("a", "2")}, []eventlog.Expect{{Stream: "a", Version: 1}}, "", 0},
				{"two-on-two", []event.Event{ev("b", "1"), ev("y", "2")},
					[]eventlog.Expect{{Stream: "y", Version: 0}, {Stream: "b", Version: 2}}, "", 0},
				{"guards-fit", []event.Event{ev("z", "1"), ev("z", "2")},
					[]eventlog.Expect{{Stream: "x", Version: 3}, {Stream: "z", Version: 0}}, "", 0},
				{"fallback", []event.Event{ev("w", "1")},
					[]eventlog.Expect{{Stream: "w", Version: 0}, {Stream: "q", Version: 0}, {Stream: "b", Version: 5}}, "", 0},
				{"fallback-conflict", []event.Event{ev("v", "1")},
					[]eventlog.Expect{{Stream: "v", Version: 0}, {Stream: "b", Version: 1}}, "b", 5},
				{"duplicate-agree", []event.Event{ev("u", "1")},
					[]eventlog.Expect{{Stream: "u", Version: 0}, {Stream: "u", Version: 0}}, "", 0},
				{"duplicate-disagree", []event.Event{ev("u", "1")},
					[]eventlog.Expect{{Stream: "u", Version: 0}, {Stream: "u", Version: 7}}, "u", 10},
				{"guard-conflict", []event.Event{ev("t", "1"), ev("t", "2")},
					[]eventlog.Expect{{Stream: "t", Version: 0}, {Stream: "a", Version: 1000}}, "a", 4},
			}
			for _, tc := range tests {
				before, _ := l.Head(ctx)
				_, err := l.Append(ctx, tc.batch, tc.expect...)
				if tc.stream == "" {
					if err != nil {
						t.Fatalf("%s: %v", tc.name, err)
					}
					continue
				}
				var ce *eventlog.ConflictError
				if !errors.As(err, &ce) {
					t.Fatalf("%s: err = %v, want *ConflictError", tc.name, err)
				}
				if ce.Stream != tc.stream || ce.Actual != tc.actual {
					t.Fatalf("%s: conflict on %q at %d, want %q at %d", tc.name, ce.Stream, ce.Actual, tc.stream, tc.actual)
				}
				if h, _ := l.Head(ctx); h != before {
					t.Fatalf("%s: head moved from %d to %d on conflict", tc.name, before, h)
				}
			}
		})
	}
}

// TestBatchTime checks that every event of a batch carries the batch's
// time, also when read by a fresh Log (no cached times) from the middle of
// the batch or through its stream, and that SeekTime lands on batch starts.
func TestBatchTime(t *testing.T) {
	for _, top := range topologies(t) {
		t.Run(top.name, func(t *testing.T) {
			l, nc := openLog(t, top, natslog.Options{})
			ctx := context.Background()
			var rs []eventlog.Result
			for i := 0; i < 4; i++ {
				batch := make([]event.Event, 50)
				for j := range batch {
					batch[j] = ev(fmt.Sprintf("s%d", j%5), fmt.Sprint(j))
				}
				r, err := l.Append(ctx, batch)
				if err != nil {
					t.Fatal(err)
				}
				rs = append(rs, r)
			}
			fresh, err := natslog.Open(ctx, nc, l.Options())
			if err != nil {
				t.Fatal(err)
			}
			defer fresh.Close()
			timeOf := func(pos uint64) int64 {
				for _, r := range rs {
					if pos >= r.First && pos <= r.Last {
						return r.Time
					}
				}
				t.Fatalf("position %d not appended", pos)
				return 0
			}
			evs, err := fresh.Read(ctx, rs[1].First+17, 7)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				if e.Time != timeOf(e.Position) {
					t.Fatalf("Read: time of %d = %d, want %d", e.Position, e.Time, timeOf(e.Position))
				}
			}
			evs, err = fresh.ReadStream(ctx, "s3", 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 40 {
				t.Fatalf("ReadStream = %d events, want 40", len(evs))
			}
			for _, e := range evs {
				if e.Time != timeOf(e.Position) {
					t.Fatalf("ReadStream: time of %d = %d, want %d", e.Position, e.Time, timeOf(e.Position))
				}
			}
			for _, r := range rs {
				for _, d := range []int64{0, 1} {
					p, err := fresh.SeekTime(ctx, time.Unix(0, r.Time+d))
					if err != nil {
						t.Fatal(err)
					}
					want := r.First
					if d == 1 {
						want = r.Last + 1
					}
					if p != want {
						t.Fatalf("SeekTime(%d+%d) = %d, want %d", r.Time, d, p, want)
					}
				}
			}
		})
	}
}

// TestDenyRemoval checks that the stream refuses deletes and purges, which
// would leave holes in the positions.
func TestDenyRemoval(t *testing.T) {
	s := natstest.RunServer(t, natstest.Options{})
	l, nc := openLog(t, topology{"single", s.URL, 1}, natslog.Options{})
	ctx := context.Background()
	if _, err := l.Append(ctx, batchOf(3, "a")); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctx, streamOf(l))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctx, 2); err == nil {
		t.Fatal("DeleteMsg succeeded")
	}
	if err := st.Purge(ctx); err == nil {
		t.Fatal("Purge succeeded")
	}
	checkContiguous(t, l, nc, streamOf(l), 3)
}

// TestInflightLimit appends more concurrent batches than the server admits
// per stream (50) from as many connections: any the server rejects are
// retried, and all land whole.
func TestInflightLimit(t *testing.T) {
	s := natstest.RunServer(t, natstest.Options{})
	l, nc := openLog(t, topology{"single", s.URL, 1}, natslog.Options{MaxInflight: 100})
	ctx := context.Background()
	const writers, per, size = 64, 2, 20
	// Each writer has its own connection, so the server sees the batches
	// interleaved rather than one connection's writes in turn.
	logs := make([]*natslog.Log, writers)
	for i := range logs {
		c, err := nats.Connect(s.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if logs[i], err = natslog.Open(ctx, c, l.Options()); err != nil {
			t.Fatal(err)
		}
		defer logs[i].Close()
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				r, err := logs[w].Append(ctx, batchOf(size, fmt.Sprintf("w%d", w)))
				if err == nil && r.Last-r.First != size-1 {
					err = fmt.Errorf("batch at %d..%d", r.First, r.Last)
				}
				if err != nil {
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
	checkContiguous(t, l, nc, streamOf(l), writers*per*size)
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts natslog.Options
		ok   bool
	}{
		{"zero", natslog.Options{}, true},
		{"full", natslog.Options{Stream: "EV", Subject: "tl.events", Replicas: 3, Storage: jetstream.MemoryStorage}, true},
		{"stream-dot", natslog.Options{Stream: "a.b"}, false},
		{"stream-space", natslog.Options{Stream: "a b"}, false},
		{"subject-wildcard", natslog.Options{Subject: "tl.*"}, false},
		{"subject-empty-token", natslog.Options{Subject: "tl..x"}, false},
		{"replicas-2", natslog.Options{Replicas: 2}, false},
		{"negative", natslog.Options{MaxBatch: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.opts.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestClusterReplicas checks that the cluster backend really replicates.
func TestClusterReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster: skipped in -short mode")
	}
	c := natstest.RunCluster(t, 3, natstest.Options{})
	l, nc := openLog(t, topology{"cluster", c.URL, 3}, natslog.Options{})
	if _, err := l.Append(context.Background(), batchOf(5, "a")); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	st, err := js.Stream(context.Background(), streamOf(l))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("replicas = %d, cluster %+v; want 3 (leader + 2)", info.Config.Replicas, info.Cluster)
	}
}
