package timetravel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// cancelingLog cancels a context on its n-th Read.
type cancelingLog struct {
	eventlog.Log
	n      int
	cancel context.CancelFunc
}

func (l *cancelingLog) Read(ctx context.Context, from uint64, max int) ([]event.Event, error) {
	if l.n--; l.n == 0 {
		l.cancel()
	}
	return l.Log.Read(ctx, from, max)
}

// TestReplayStops checks that a replay, which reads ahead on a goroutine
// of its own, ends on a failed apply, a canceled context and a log that
// ends too early with the error of each, leaving no goroutine behind; and
// that it applies every event up to the position asked, whatever the
// batch.
func TestReplayStops(t *testing.T) {
	ctx := context.Background()
	l := memlog.New(memlog.Options{})
	var evs []event.Event
	for i := range 40 {
		id := fmt.Sprintf("t%d", i%4)
		typ := twingraph.TypeTwinCreated
		var p any = twingraph.TwinState{ID: id, Model: "dtmi:x:T;1"}
		if i >= 4 {
			typ = twingraph.TypeTwinPatched
			p = twingraph.TwinPatched{ID: id, Patch: json.RawMessage(`[]`),
				SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"n": json.RawMessage(fmt.Sprint(i))}}}
		}
		if i == 30 {
			id = "missing" // patching a twin that does not exist fails the apply
			p = twingraph.TwinPatched{ID: id, Patch: json.RawMessage(`[]`)}
		}
		e, err := twingraph.NewEvent(twingraph.TwinStream(id), typ, "a", p)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	if _, err := l.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()

	for _, batch := range []int{1, 3, 7, 100} {
		g := twingraph.New(twingraph.Options{})
		if err := replay(ctx, l, g, 29, batch); err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		if g.Position() != 29 {
			t.Fatalf("batch %d: at %d, want 29", batch, g.Position())
		}
		if tw, _ := g.Snapshot().Twin("t1"); tw == nil || tw.Version != 26 {
			t.Fatalf("batch %d: t1 = %+v, want version 26", batch, tw)
		}
	}

	g := twingraph.New(twingraph.Options{})
	if err := replay(ctx, l, g, 40, 4); err == nil || !strings.Contains(err.Error(), "apply at 29") {
		t.Fatalf("replay over a failing event: %v", err)
	}
	if g.Position() != 28 {
		t.Fatalf("after the failed batch at %d, want 28", g.Position())
	}

	cctx, cancel := context.WithCancel(ctx)
	if err := replay(cctx, &cancelingLog{Log: l, n: 3, cancel: cancel}, twingraph.New(twingraph.Options{}), 29, 2); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled replay: %v", err)
	}

	short := memlog.New(memlog.Options{})
	if _, err := short.Append(ctx, evs[:10]); err != nil {
		t.Fatal(err)
	}
	if err := replay(ctx, short, twingraph.New(twingraph.Options{}), 20, 4); !errors.Is(err, eventlog.ErrOutOfRange) {
		t.Fatalf("replay beyond the log: %v", err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after the replays, %d before", n, before)
	}
}

// TestBuildEstimate checks that the size a build estimates from its start
// and the events it replayed (twins and relationships added and removed)
// is what walking the graph it built gives, for builds from checkpoints,
// from cached graphs and from the start of the log.
func TestBuildEstimate(t *testing.T) {
	ctx := context.Background()
	l := memlog.New(memlog.Options{})
	var evs []event.Event
	add := func(stream, typ string, p any) {
		e, err := twingraph.NewEvent(stream, typ, "a", p)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	rel := func(src, id, tgt string) twingraph.RelationshipState {
		return twingraph.RelationshipState{Source: src, ID: id, Name: "next", Target: tgt, Properties: json.RawMessage(`{}`)}
	}
	for i := range 30 {
		id := fmt.Sprintf("t%02d", i)
		add(twingraph.TwinStream(id), twingraph.TypeTwinCreated, twingraph.TwinState{ID: id, Model: "dtmi:x:T;1"})
		if i > 0 {
			prev := fmt.Sprintf("t%02d", i-1)
			if (i-1)%4 == 3 { // deleted
				prev = "t00"
			}
			add(twingraph.TwinStream(id), twingraph.TypeRelationshipCreated, rel(id, "r", prev))
			add(twingraph.TwinStream(prev), twingraph.TypeRelationshipLinked, twingraph.RelationshipRef{Source: id, ID: "r", Name: "next", Target: prev})
		}
		if i%4 == 3 {
			// Delete a relationship, then the twin it started from
			// (which nothing targets).
			add(twingraph.TwinStream(id), twingraph.TypeRelationshipDeleted, twingraph.RelationshipRef{Source: id, ID: "r", Name: "next"})
			add(twingraph.TwinStream(id), twingraph.TypeTwinDeleted, twingraph.TwinRef{ID: id})
		}
		if i%5 == 4 && i%4 != 3 {
			add(twingraph.TwinStream(id), twingraph.TypeRelationshipReplaced, rel(id, "r", "t00"))
		}
	}
	if _, err := l.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := Backfill(ctx, l, dir, twingraph.Options{}, CheckpointOptions{Every: 17}); err != nil {
		t.Fatal(err)
	}
	head := uint64(len(evs))
	for _, dirs := range [][]string{nil, {dir}} {
		tt, err := New(l, nil, Options{Dirs: dirs, CacheEntries: 64, ReadBatch: 5})
		if err != nil {
			t.Fatal(err)
		}
		for _, pos := range []uint64{head / 2, 3, head / 2, head - 1, head, head/2 + 7, 20, 40} {
			if _, err := tt.Position(ctx, pos); err != nil {
				t.Fatal(err)
			}
		}
		tt.mu.Lock()
		for pos, e := range tt.mu.entries {
			if want := estimate(e.snap); e.bytes != want {
				t.Errorf("dirs %v: entry at %d estimated %d, a walk gives %d", dirs, pos, e.bytes, want)
			}
		}
		tt.mu.Unlock()
	}
}
