package simulate_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twinlog/twinlog/processors/simulate"
	"github.com/twinlog/twinlog/projections/timetravel"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// TestPersistedBranch stops a simulator while a branch kept on disk is
// replaying, restores it in a new simulator, and checks that the replay
// resumes where it stopped: every recorded message copied exactly once,
// the synthetic patch kept, the same graph as an uninterrupted branch.
func TestPersistedBranch(t *testing.T) {
	dir := t.TempDir()
	opts := simulate.Options{Dir: dir}
	w := newWorldWith(t, opts)
	ctx := context.Background()
	fork := w.graph.Snapshot().Position()
	const n = 40
	for i := range n {
		w.tick(time.Minute)
		id := []string{"r1", "r2"}[i%2]
		if err := w.twins.SendTelemetry(ctx, "dev", id, "", "m"+strconv.Itoa(i), "", []byte(`{"t":`+strconv.Itoa(i)+`}`)); err != nil {
			t.Fatal(err)
		}
	}
	req := simulate.Request{At: timetravel.At{Position: fork}, Window: &simulate.Window{}, Speed: 600, // 40 recorded minutes in 4 s
		Events: []simulate.Event{{TwinID: "r2", Patch: []byte(`[{"op":"replace","path":"/temperature","value":25}]`)}}}
	b, err := w.sim.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	if st := b.Status(); st.Done || st.Fed < 2 || st.Fed >= n+1 {
		t.Fatalf("not stopped mid-replay: %+v", st)
	}
	w.sim.Close()
	if _, err := os.Stat(filepath.Join(dir, b.ID(), "branch.json")); err != nil {
		t.Fatalf("the branch is not kept: %v", err)
	}

	tt, err := timetravel.New(w.log, w.graph, timetravel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulate.New(w.log, tt, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if got, err := sim.Restore(ctx); err != nil || got != 1 {
		t.Fatalf("restore: %d, %v", got, err)
	}
	rb, err := sim.Get(b.ID())
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := rb.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	if st := rb.Status(); !st.Done || st.Fed != n+1 || st.Position != fork+n+1 {
		t.Fatalf("restored branch: %+v, want %d fed at position %d", st, n+1, fork+n+1)
	}

	// The same branch, never interrupted.
	req.Speed = 0
	ref, err := sim.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if ref.ID() == b.ID() {
		t.Fatalf("a new branch reuses the id %s", ref.ID())
	}
	if err := ref.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	twingraph.Diff(rb.Graph().Snapshot(), ref.Graph().Snapshot(), twingraph.DiffOptions{}, func(d twingraph.Difference) bool {
		t.Errorf("restored vs uninterrupted: %s", d)
		return true
	})
	for _, id := range []string{"r1", "r2"} {
		a, _ := rb.Graph().Snapshot().Telemetry(id)
		r, _ := ref.Graph().Snapshot().Telemetry(id)
		if a == nil || r == nil || len(a.Last) != 1 || string(a.Last[0].Body) != string(r.Last[0].Body) || a.Last[0].Time != r.Last[0].Time {
			t.Errorf("%s last telemetry: restored %+v, uninterrupted %+v", id, a, r)
		}
	}
	if got := w.temperature(t, rb.Graph(), "r2"); got != 25 {
		t.Errorf("r2 temperature %v in the restored branch, want the synthetic 25", got)
	}
	if _, _, err := rb.Twins().GetTwin(ctx, "r1"); err != nil {
		t.Fatal(err)
	}

	if err := sim.Delete(b.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, b.ID())); !os.IsNotExist(err) {
		t.Fatalf("deleted branch still on disk: %v", err)
	}
}
