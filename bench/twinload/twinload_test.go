package twinload

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/twinlog/twinlog/bench/stdgraph"
)

// TestSmall runs the workload on a tiny graph so it stays working; the
// figures are not checked (they are published by make bench).
func TestSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("workload smoke test skipped in -short mode")
	}
	cfg := Config{
		Graph:    stdgraph.Config{Buildings: 1, Floors: 2, Rooms: 3, Sensors: 2},
		Conns:    4,
		Duration: 300 * time.Millisecond,
		Postgres: os.Getenv("TWINLOG_BENCH_PG"),
	}
	if testing.Verbose() {
		cfg.Progress = os.Stderr
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"GET", "PATCH", "GET key, model grant", "GET key, subtree grant", "query admin", "query key, model grant"} {
		if p := res.HTTP[op]; p.Ops == 0 || p.Errors != 0 {
			t.Fatalf("%s phase: %+v", op, p)
		}
	}
	if res.RestartSeconds <= 0 {
		t.Fatal("restart not measured")
	}
}
