package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/httpapi"
	"github.com/twinlog/twinlog/projections/telemetry"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// newTelemetryServer serves the telemetry history of a log holding two
// sensors, one of model Sensor and one of no known model, with ten points
// each stamped at append time.
func newTelemetryServer(t *testing.T) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	l := memlog.New(memlog.Options{})
	var evs []event.Event
	e, err := twingraph.NewEvent(twingraph.TwinStream("s1"), twingraph.TypeTwinCreated, "a", twingraph.TwinState{ID: "s1", Model: "dtmi:ex:Sensor;1"})
	if err != nil {
		t.Fatal(err)
	}
	evs = append(evs, e)
	for i := range 10 {
		for _, id := range []string{"s1", "s2"} {
			e, err := twingraph.NewEvent(twingraph.TelemetryStream(id), twingraph.TypeTelemetry, "a", twingraph.Telemetry{
				Twin: id, MessageID: fmt.Sprint(i), Body: json.RawMessage(fmt.Sprintf(`{"level":%d}`, i))})
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, e)
		}
	}
	if _, err := l.Append(ctx, evs); err != nil {
		t.Fatal(err)
	}
	g := twingraph.New(twingraph.Options{})
	eng, err := engine.New(l, engine.Options{}, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	st, err := telemetry.New(telemetry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := telemetry.Follow(ctx, l, st, telemetry.FollowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	api := httpapi.New(httpapi.Config{Engine: eng, Token: token})
	api.RegisterTelemetry(f)
	srv := serveNode(t, api)
	t.Cleanup(srv.Close)
	return srv
}

func TestTelemetryAPI(t *testing.T) {
	srv := newTelemetryServer(t)

	r := call(t, srv, "GET", "/telemetry/models", "")
	if r.status != 200 || !strings.Contains(r.body, `"value":["","dtmi:ex:Sensor;1"],"points":20`) {
		t.Fatalf("models: %d %s", r.status, r.body)
	}

	// Every twin, the last hour (relative times), one bucket.
	r = call(t, srv, "GET", "/telemetry?from=-1h&agg=count,sum,last&api-version=2023-10-31", "")
	if r.status != 200 {
		t.Fatalf("query: %d %s", r.status, r.body)
	}
	var res struct {
		Series []struct {
			Twin, Field string
			Buckets     []struct {
				Count     int64
				Sum, Last float64
			}
		}
	}
	if err := json.Unmarshal([]byte(r.body), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Series) != 2 {
		t.Fatalf("%d series, want 2: %s", len(res.Series), r.body)
	}
	for i, want := range []string{"s1", "s2"} {
		s := res.Series[i]
		if s.Twin != want || s.Field != "level" || len(s.Buckets) != 1 || s.Buckets[0].Count != 10 || s.Buckets[0].Sum != 45 || s.Buckets[0].Last != 9 {
			t.Fatalf("series %d: %+v, want %s level n=10 sum=45 last=9", i, s, want)
		}
	}

	// A model restricts the twins.
	r = call(t, srv, "GET", "/telemetry?"+url.Values{"model": {"dtmi:ex:Sensor;1"}, "from": {"-1h"}}.Encode(), "")
	if r.status != 200 || !strings.Contains(r.body, `"twin":"s1"`) || strings.Contains(r.body, `"twin":"s2"`) {
		t.Fatalf("by model: %d %s", r.status, r.body)
	}

	// Arrow IPC export of the Sensor model.
	r = call(t, srv, "GET", "/telemetry/export?"+url.Values{"model": {"dtmi:ex:Sensor;1"}, "format": {"arrow"}}.Encode(), "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/vnd.apache.arrow.stream" {
		t.Fatalf("arrow export: %d %s", r.status, r.header)
	}
	rd, err := ipc.NewReader(strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	rows := int64(0)
	for rd.Next() {
		rows += rd.RecordBatch().NumRows()
	}
	if rows != 10 || rd.Schema().NumFields() != 3 {
		t.Fatalf("arrow export: %d rows, schema %v; want 10 rows of twin, time, level", rows, rd.Schema())
	}

	for _, tc := range []struct {
		name, path, want string
	}{
		{"bad to", "/telemetry?to=soon", `to \"soon\" is neither`},
		{"zero bucket", "/telemetry?bucket=0s", `bucket \"0s\" is not a positive duration`},
		{"too many buckets", "/telemetry?from=-87600h&bucket=1ns", "widen the bucket"},
		{"too many cells", "/telemetry?from=-1h&bucket=250us", "narrow it or widen the bucket"},
		{"out of range", "/telemetry?from=0001-01-01T00:00:00Z", "between the years"},
		{"unknown export parameter", "/telemetry/export?model=x&fmt=arrow", `unknown parameter \"fmt\"`},
		{"export bad range", "/telemetry/export?model=x&from=-1h&to=-2h", "from must be before to"},
	} {
		r := call(t, srv, "GET", tc.path, "")
		if r.status != 400 || errCode(t, r) != "InvalidArgument" || !strings.Contains(r.body, tc.want) {
			t.Errorf("%s: %d %s, want 400 InvalidArgument with %s", tc.name, r.status, r.body, tc.want)
		}
	}
}
