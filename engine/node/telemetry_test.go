package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/twinlog/twinlog/engine/node"
)

// telemetryCells queries GET /telemetry and returns its cells as
// "twin field hh:mm" -> "n=.. min=.. max=.. avg=.. sum=.. last=..".
func telemetryCells(t *testing.T, n *node.Node, q url.Values) map[string]string {
	t.Helper()
	code, body := do(t, http.DefaultClient, "GET", n.URL()+"/telemetry?"+q.Encode(), n.Token(), "")
	if code != 200 {
		t.Fatalf("GET /telemetry: %d %s", code, body)
	}
	var res struct {
		Series []struct {
			Twin, Field string
			Buckets     []struct {
				Start                    time.Time
				Count                    int64
				Min, Max, Avg, Sum, Last float64
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range res.Series {
		for _, b := range s.Buckets {
			got[fmt.Sprintf("%s %s %s", s.Twin, s.Field, b.Start.Format("15:04"))] =
				fmt.Sprintf("n=%d min=%g max=%g avg=%g sum=%g last=%g", b.Count, b.Min, b.Max, b.Avg, b.Sum, b.Last)
		}
	}
	return got
}

// TestTelemetryHistory ingests two hours of telemetry for two rooms over
// HTTP, queries its aggregates and exports it as Parquet, then restarts
// the node from a twin graph snapshot taken after the telemetry and checks
// the history was rebuilt from the whole log.
func TestTelemetryHistory(t *testing.T) {
	dir := t.TempDir()
	n, stop := start(t, node.Config{DataDir: dir})
	tok := n.Token()
	c := http.DefaultClient
	model := `[{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Room;1","@type":"Interface",
		"contents":[{"@type":"Telemetry","name":"temperature","schema":"double"},
		{"@type":"Telemetry","name":"co2","schema":"integer"}]}]`
	if code, body := do(t, c, "POST", n.URL()+"/models", tok, model); code != 201 {
		t.Fatalf("create model: %d %s", code, body)
	}
	for _, id := range []string{"room-1", "room-2"} {
		if code, body := do(t, c, "PUT", n.URL()+"/digitaltwins/"+id, tok, `{"$metadata":{"$model":"dtmi:ex:Room;1"}}`); code != 200 {
			t.Fatalf("put twin: %d %s", code, body)
		}
	}
	// Two hours, a point per minute per room: room-1 at temperature m,
	// room-2 at 100+m with co2 400+m.
	t0 := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	var pts []string
	for m := range 120 {
		tm := t0.Add(time.Duration(m) * time.Minute).Format(time.RFC3339)
		pts = append(pts,
			fmt.Sprintf(`{"twinId":"room-1","time":%q,"temperature":%d}`, tm, m),
			fmt.Sprintf(`{"twinId":"room-2","time":%q,"temperature":%d,"co2":%d}`, tm, 100+m, 400+m))
	}
	// In two requests, so the history spans several log batches.
	for _, part := range [][]string{pts[:100], pts[100:]} {
		if code, body := do(t, c, "POST", n.URL()+"/ingest", tok, "["+strings.Join(part, ",")+"]"); code != 200 {
			t.Fatalf("ingest: %d %s", code, body)
		}
	}

	q := url.Values{
		"twin": {"room-1", "room-2"}, "from": {t0.Format(time.RFC3339)}, "to": {t0.Add(2 * time.Hour).Format(time.RFC3339)},
		"bucket": {"1h"}, "agg": {"count,min,max,avg,sum,last"},
	}
	want := map[string]string{
		"room-1 temperature 00:00": "n=60 min=0 max=59 avg=29.5 sum=1770 last=59",
		"room-1 temperature 01:00": "n=60 min=60 max=119 avg=89.5 sum=5370 last=119",
		"room-2 temperature 00:00": "n=60 min=100 max=159 avg=129.5 sum=7770 last=159",
		"room-2 temperature 01:00": "n=60 min=160 max=219 avg=189.5 sum=11370 last=219",
		"room-2 co2 00:00":         "n=60 min=400 max=459 avg=429.5 sum=25770 last=459",
		"room-2 co2 01:00":         "n=60 min=460 max=519 avg=489.5 sum=29370 last=519",
	}
	check := func(n *node.Node, label string) {
		t.Helper()
		got := telemetryCells(t, n, q)
		if len(got) != len(want) {
			t.Fatalf("%s: got %d cells %v, want %d", label, len(got), got, len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s: %s, want %s", label, k, got[k], v)
			}
		}
	}
	check(n, "live")

	// One field of one twin over a quarter of an hour, the default avg.
	one := telemetryCells(t, n, url.Values{"twin": {"room-2"}, "field": {"co2"},
		"from": {t0.Add(10 * time.Minute).Format(time.RFC3339)}, "to": {t0.Add(25 * time.Minute).Format(time.RFC3339)}, "agg": {"avg"}})
	if got := one["room-2 co2 00:10"]; len(one) != 1 || got != "n=0 min=0 max=0 avg=417 sum=0 last=0" {
		t.Fatalf("one field: %v", one)
	}

	// Bad parameters are 400s in ADT's shape, naming the parameter.
	for _, tc := range []struct{ name, query, want string }{
		{"unknown aggregate", "agg=median", `agg \"median\" is not an aggregate`},
		{"bad bucket", "bucket=hourly", `bucket \"hourly\" is not a positive duration`},
		{"negative bucket", "bucket=-1h", `bucket \"-1h\" is not a positive duration`},
		{"bad from", "from=yesterday", `from \"yesterday\" is neither`},
		{"empty range", "from=2026-11-24T01:00:00Z&to=2026-11-24T00:00:00Z", "must be before to"},
		{"unknown parameter", "twins=room-1", `unknown parameter \"twins\"`},
	} {
		code, body := do(t, c, "GET", n.URL()+"/telemetry?"+tc.query, tok, "")
		if code != 400 || !strings.Contains(body, `"code":"InvalidArgument"`) || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want 400 InvalidArgument with %s", tc.name, code, body, tc.want)
		}
	}
	for _, tc := range []struct{ name, query, want string }{
		{"no model", "format=parquet", "model is required"},
		{"bad format", "model=x&format=csv", `format \"csv\" is not supported`},
	} {
		code, body := do(t, c, "GET", n.URL()+"/telemetry/export?"+tc.query, tok, "")
		if code != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want 400 with %s", tc.name, code, body, tc.want)
		}
	}

	exportParquet(t, n, 240, 4)

	// A snapshot after the telemetry makes the restarted engine skip it;
	// the history is still rebuilt from the log's start.
	if _, err := n.Snapshotter().Take(); err != nil {
		t.Fatal(err)
	}
	stop()
	n2, stop2 := start(t, node.Config{DataDir: dir})
	defer stop2()
	if from := n2.Engine().Applied(); from == 0 {
		t.Fatal("engine applied nothing after restart")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n2.Telemetry().Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check(n2, "restarted")
	exportParquet(t, n2, 240, 4)
}

// exportParquet downloads the Room model's history as Parquet and reads it
// back.
func exportParquet(t *testing.T, n *node.Node, rows int64, cols int) {
	t.Helper()
	q := url.Values{"model": {"dtmi:ex:Room;1"}, "format": {"parquet"}}
	req, _ := http.NewRequest("GET", n.URL()+"/telemetry/export?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+n.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.apache.parquet" {
		t.Fatalf("export: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), buf.String())
	}
	pf, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != rows || int(tbl.NumCols()) != cols {
		t.Fatalf("parquet: %d rows × %d columns (%v), want %d × %d", tbl.NumRows(), tbl.NumCols(), tbl.Schema(), rows, cols)
	}
}
