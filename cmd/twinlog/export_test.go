package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// TestExportAndTelemetry ingests an hour of one room's telemetry, prints
// its aggregates with `twinlog telemetry` and exports it with `twinlog
// export --parquet`, reading the file back.
func TestExportAndTelemetry(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	c, err := (&clientFlags{server: n.URL(), token: "test-token"}).client()
	if err != nil {
		t.Fatal(err)
	}
	model := `[{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Room;1","@type":"Interface",
		"contents":[{"@type":"Telemetry","name":"temperature","schema":"double"}]}]`
	if err := c.do(ctx, "POST", "/models", []byte(model), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.do(ctx, "PUT", "/digitaltwins/room-1", []byte(`{"$metadata":{"$model":"dtmi:ex:Room;1"}}`), nil, nil); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	var pts []string
	for m := range 60 {
		pts = append(pts, fmt.Sprintf(`{"twinId":"room-1","time":%q,"temperature":%d}`, t0.Add(time.Duration(m)*time.Minute).Format(time.RFC3339), m))
	}
	if err := c.do(ctx, "POST", "/ingest", []byte("["+strings.Join(pts, ",")+"]"), nil, nil); err != nil {
		t.Fatal(err)
	}
	conn := []string{"--server", n.URL(), "--token", "test-token"}

	out, err := runCLI(t, append([]string{"telemetry", "--twin", "room-1", "--agg", "count,avg,max",
		"--from", "2026-11-24T00:00:00Z", "--to", "2026-11-24T01:00:00Z", "--bucket", "30m"}, conn...)...)
	if err != nil {
		t.Fatalf("telemetry: %v\n%s", err, out)
	}
	want := []string{
		"twin    field        start                 count  max  avg",
		"room-1  temperature  2026-11-24T00:00:00Z  30     29   14.5",
		"room-1  temperature  2026-11-24T00:30:00Z  30     59   44.5",
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("telemetry printed:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	if out, err := runCLI(t, append([]string{"telemetry", "--agg", "median"}, conn...)...); err == nil || !strings.Contains(err.Error(), "InvalidArgument") {
		t.Fatalf("bad aggregate: %v\n%s", err, out)
	}

	path := filepath.Join(t.TempDir(), "rooms.parquet")
	if out, err := runCLI(t, append([]string{"export", "--parquet", path, "--model", "dtmi:ex:Room;1"}, conn...)...); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pf, err := file.NewParquetReader(f)
	if err != nil {
		t.Fatal(err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != 60 || tbl.NumCols() != 3 {
		t.Fatalf("parquet: %d rows × %d columns, want 60 × 3", tbl.NumRows(), tbl.NumCols())
	}
	if _, err := runCLI(t, append([]string{"export", "--model", "x"}, conn...)...); err == nil {
		t.Fatal("export without a file: no error")
	}
}
