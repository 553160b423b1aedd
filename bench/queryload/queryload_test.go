package queryload

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twinlog/twinlog/bench/stdgraph"
)

// TestSmall runs the workload on a tiny graph so it stays working; the
// figures are not checked (they are published by make bench). The
// PostgreSQL baseline runs when TWINLOG_BENCH_PG names a server.
func TestSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("workload smoke test skipped in -short mode")
	}
	cfg := Config{
		Graph:    stdgraph.Config{Buildings: 2, Floors: 2, Rooms: 3, Sensors: 2, Seed: 1},
		Phase:    50 * time.Millisecond,
		Queries:  200,
		Conns:    4,
		Postgres: os.Getenv("TWINLOG_BENCH_PG"),
	}
	if testing.Verbose() {
		cfg.Progress = os.Stderr
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []Mixed{res.HTTP, res.HTTPPoint} {
		if m.Errors != 0 || m.PerSec == 0 {
			t.Fatalf("mixed workload: %+v", m)
		}
	}
	if cfg.Postgres != "" && res.PGError != "" {
		t.Fatalf("postgres: %s", res.PGError)
	}
	var doc bytes.Buffer
	Markdown(&doc, cfg, res)
	if !strings.Contains(doc.String(), "| lookup `SELECT") {
		t.Fatalf("report:\n%s", doc.String())
	}
}

func TestCountRows(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       int
		err        bool
	}{
		{name: "empty", body: `{"value":[],"continuationToken":null}`, want: 0},
		{name: "objects", body: `{"value":[{"a":1},{"b":[1,2,{"c":"]"}]}],"continuationToken":null}`, want: 2},
		{name: "scalars", body: `{"value":[1, "x,y", true, null, -2.5e3],"continuationToken":"t"}`, want: 5},
		{name: "escapes", body: `{"value":["a\"],[", {"k":"\\"}, "\\\""]}`, want: 3},
		{name: "nested arrays", body: `{"value":[[[]],[1,[2,3]]]}`, want: 2},
		{name: "other shape", body: `{"continuationToken":null,"value":[{"a":1},{"a":2}]}`, want: 2},
		{name: "truncated", body: `{"value":[{"a":1},{"a":`, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := countRows([]byte(tc.body))
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("countRows = %d, %v; want %d (error %v)", got, err, tc.want, tc.err)
			}
		})
	}
}
