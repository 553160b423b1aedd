package telemetry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/projections/telemetry"
)

// appendAll appends evs to lg in batches of n, as the log would have
// received them.
func appendAll(t *testing.T, lg *memlog.Log, evs []event.Event, n int) {
	t.Helper()
	for i := 0; i < len(evs); i += n {
		part := append([]event.Event(nil), evs[i:min(i+n, len(evs))]...)
		for j := range part {
			part[j].Position, part[j].Time = 0, 0
		}
		if _, err := lg.Append(context.Background(), part); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFollow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lg := memlog.New(memlog.Options{})
	evs := events(t)
	half := len(evs) / 2
	appendAll(t, lg, evs[:half], 5)

	s, err := telemetry.New(telemetry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := telemetry.Follow(ctx, lg, s, telemetry.FollowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WaitApplied(ctx, uint64(half)); err != nil {
		t.Fatal(err)
	}
	if err := f.Ready(); err != nil {
		t.Fatalf("ready after catching up: %v", err)
	}
	// Half the events: the two twins, then 59 minutes of room1 and room2.
	if got, want := s.Points(), uint64(half-2); got != want {
		t.Fatalf("points=%d, want %d", got, want)
	}
	appendAll(t, lg, evs[half:], 3)
	if err := f.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Points(), uint64(240); got != want {
		t.Fatalf("points=%d, want %d", got, want)
	}
	if got, want := f.Position(), uint64(len(evs)); got != want {
		t.Fatalf("position=%d, want %d", got, want)
	}
	if m, _ := s.ModelOf("room2"); m != "dtmi:ex:Room;1" {
		t.Fatalf("model of room2 %q", m)
	}
	f.Stop()
	f.Stop()
	if err := f.Err(); !errors.Is(err, telemetry.ErrStopped) {
		t.Fatalf("err=%v after Stop, want ErrStopped", err)
	}
	if err := f.Ready(); err == nil {
		t.Fatal("ready after Stop")
	}

	// A store that already holds a prefix resumes after it.
	s2, _ := telemetry.New(telemetry.Options{})
	got, _ := lg.Read(ctx, 1, 10)
	if err := s2.Apply(got); err != nil {
		t.Fatal(err)
	}
	f2, err := telemetry.Follow(ctx, lg, s2, telemetry.FollowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Stop()
	if err := f2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s2.Points(); got != 240 {
		t.Fatalf("resumed store has %d points, want 240", got)
	}
}
