package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
)

// counters is a projection: stream → (value, version).
type counters struct {
	mu   sync.RWMutex
	vals map[string][2]uint64
	fail uint64 // position at which Apply fails, 0 for never
}

func newCounters() *counters { return &counters{vals: map[string][2]uint64{}} }

func (c *counters) Apply(batch []event.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range batch {
		if e.Position == c.fail {
			return errors.New("boom")
		}
		n, err := strconv.ParseUint(string(e.Payload), 10, 64)
		if err != nil {
			return err
		}
		c.vals[e.Stream] = [2]uint64{n, e.Position}
	}
	return nil
}

func (c *counters) get(s string) (val, ver uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v := c.vals[s]
	return v[0], v[1]
}

// increment is a read-modify-write command that conflicts under contention.
func increment(c *counters, stream string) engine.Command {
	return engine.CommandFunc(func(ctx context.Context) (engine.Decision, error) {
		val, ver := c.get(stream)
		return engine.Decision{
			Events: []event.Event{{Stream: stream, Type: "set", Payload: []byte(strconv.FormatUint(val+1, 10))}},
			Expect: []eventlog.Expect{{Stream: stream, Version: ver}},
			Value:  val + 1,
		}, nil
	})
}

func start(t *testing.T, l eventlog.Log, from uint64, projs ...engine.Projection) *engine.Engine {
	t.Helper()
	e, err := engine.New(l, engine.Options{From: from, MaxRetries: 1000}, projs...)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	return e
}

func TestExecuteReadYourWrites(t *testing.T) {
	l := memlog.New(memlog.Options{})
	c := newCounters()
	e := start(t, l, 0, c)
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		r, err := e.Execute(ctx, increment(c, "a"))
		if err != nil {
			t.Fatal(err)
		}
		// Acknowledged means applied: the projection shows it now.
		if v, ver := c.get("a"); v != uint64(i) || ver != r.Appended.Last {
			t.Fatalf("after write %d: value %d version %d, want %d at %d", i, v, ver, i, r.Appended.Last)
		}
		if r.Value.(uint64) != uint64(i) {
			t.Fatalf("value = %v, want %d", r.Value, i)
		}
	}
}

func TestExecuteConflictsRetry(t *testing.T) {
	l := memlog.New(memlog.Options{})
	c := newCounters()
	e := start(t, l, 0, c)
	ctx := context.Background()
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := e.Execute(ctx, increment(c, "hot")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// No lost update: every increment landed exactly once.
	if v, _ := c.get("hot"); v != workers*each {
		t.Fatalf("counter = %d, want %d", v, workers*each)
	}
}

func TestDecideErrorAppendsNothing(t *testing.T) {
	l := memlog.New(memlog.Options{})
	e := start(t, l, 0, newCounters())
	want := errors.New("invalid twin")
	_, err := e.Execute(context.Background(), engine.CommandFunc(func(context.Context) (engine.Decision, error) {
		return engine.Decision{}, want
	}))
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	if h, _ := l.Head(context.Background()); h != 0 {
		t.Fatalf("head = %d, want 0", h)
	}
}

func TestRestartReplays(t *testing.T) {
	l := memlog.New(memlog.Options{})
	c := newCounters()
	e := start(t, l, 0, c)
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		if _, err := e.Execute(ctx, increment(c, fmt.Sprint("s", i%3))); err != nil {
			t.Fatal(err)
		}
	}
	e.Stop()
	// A fresh projection rebuilt from the log has the same state.
	c2 := newCounters()
	start(t, l, 0, c2)
	for _, s := range []string{"s0", "s1", "s2"} {
		v1, p1 := c.get(s)
		v2, p2 := c2.get(s)
		if v1 != v2 || p1 != p2 || v1 != 10 {
			t.Fatalf("%s: rebuilt (%d,%d), original (%d,%d)", s, v2, p2, v1, p1)
		}
	}
}

func TestHaltOnApplyError(t *testing.T) {
	l := memlog.New(memlog.Options{})
	c := newCounters()
	c.fail = 3
	e := start(t, l, 0, c)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := e.Execute(ctx, increment(c, "a")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Execute(ctx, increment(c, "a")); !errors.Is(err, engine.ErrHalted) {
		t.Fatalf("err = %v, want ErrHalted", err)
	}
	if _, err := e.Execute(ctx, increment(c, "a")); err == nil {
		t.Fatal("halted engine accepted a command")
	}
	if e.Applied() != 2 {
		t.Fatalf("applied = %d, want 2", e.Applied())
	}
}

// TestContendedStreamQueues checks that writers contending on one stream
// succeed with few retries: after a first conflict they queue on the
// stream's lane instead of retrying against each other.
func TestContendedStreamQueues(t *testing.T) {
	l := memlog.New(memlog.Options{})
	c := newCounters()
	e, err := engine.New(l, engine.Options{MaxRetries: 8}, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	const workers, each = 32, 30
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := e.Execute(context.Background(), increment(c, "hot")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if v, _ := c.get("hot"); v != workers*each {
		t.Fatalf("counter = %d, want %d", v, workers*each)
	}
}

// TestExclusive appends events from several goroutines while Exclusive
// holds the applier: during fn the projection stays at the position fn is
// given, though the log grows; afterwards the applier catches up.
func TestExclusive(t *testing.T) {
	l := memlog.New(memlog.Options{})
	c := newCounters()
	e := start(t, l, 0, c)
	ctx := context.Background()
	var wg sync.WaitGroup
	var stop atomic.Bool
	last := make([]int, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				ev := event.Event{Stream: fmt.Sprint("s", w), Type: "set", Payload: []byte(strconv.Itoa(i))}
				if _, err := e.Append(ctx, []event.Event{ev}); err != nil {
					t.Error(err)
					return
				}
				last[w] = i
			}
		}()
	}
	grew := false
	for range 20 {
		err := e.Exclusive(func(applied uint64) error {
			_, at := c.get("s0")
			head0, _ := l.Head(ctx)
			time.Sleep(2 * time.Millisecond)
			if head, _ := l.Head(ctx); head > head0 {
				grew = true
			}
			if e.Applied() != applied {
				return fmt.Errorf("applied moved from %d to %d during fn", applied, e.Applied())
			}
			if _, now := c.get("s0"); now != at {
				return fmt.Errorf("the projection applied s0 at %d during fn", now)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if !grew {
		t.Fatal("the log never grew while fn ran: nothing was tested")
	}
	head, err := l.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.WaitApplied(ctx, head); err != nil {
		t.Fatal(err)
	}
	for w := range 4 {
		if v, _ := c.get(fmt.Sprint("s", w)); v != uint64(last[w]) {
			t.Fatalf("s%d = %d after the appends, want %d", w, v, last[w])
		}
	}
	if err := e.Exclusive(func(uint64) error { return errors.New("refused") }); err == nil || err.Error() != "refused" {
		t.Fatalf("Exclusive returned %v, want fn's error", err)
	}
}
