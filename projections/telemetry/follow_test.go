package telemetry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/projections/telemetry"
	"github.com/twinlog/twinlog/projections/twingraph"
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

// BenchmarkFollow measures rebuilding the history from a log of one
// "telemetry" event per point (the node's default layout): 1,000 twins for
// an hour, a point per minute, 60,000 events.
func BenchmarkFollow(b *testing.B) {
	ctx := context.Background()
	lg := memlog.New(memlog.Options{})
	var batch []event.Event
	for m := range 60 {
		for i := range 1000 {
			e, err := twingraph.NewEvent(twingraph.TelemetryStream(fmt.Sprintf("room%04d", i)), twingraph.TypeTelemetry, "a", twingraph.Telemetry{
				Twin: fmt.Sprintf("room%04d", i), MessageID: fmt.Sprint(m), Body: json.RawMessage(fmt.Sprintf(`{"temperature":%d.5,"co2":%d}`, 15+(i+m)%10, 400+i%50))})
			if err != nil {
				b.Fatal(err)
			}
			batch = append(batch, e)
		}
		if _, err := lg.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	head, _ := lg.Head(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		s, _ := telemetry.New(telemetry.Options{})
		f, err := telemetry.Follow(ctx, lg, s, telemetry.FollowOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := f.WaitApplied(ctx, head); err != nil {
			b.Fatal(err)
		}
		f.Stop()
	}
	b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
