package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/filelog"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/httpapi"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/ingest"
	"github.com/twinlog/twinlog/projections/twingraph"
)

type env struct {
	log eventlog.Log
	eng *engine.Engine
	g   *twingraph.Graph
	svc *twins.Service
	in  *ingest.Ingester
	srv *httptest.Server
}

// newEnv starts an engine over a memory log (or a durable file log when
// durable is set) with the test models and nTwins sensors s0..s<n-1>.
func newEnv(t testing.TB, durable bool, nTwins int, opts ingest.Options) *env {
	t.Helper()
	var l eventlog.Log
	if durable {
		fl, err := filelog.Open(filepath.Join(t.TempDir(), "log"), filelog.Options{})
		if err != nil {
			t.Fatal(err)
		}
		l = fl
	} else {
		l = memlog.New(memlog.Options{})
	}
	t.Cleanup(func() { l.Close() })
	g := twingraph.New(twingraph.Options{})
	eng, err := engine.New(l, engine.Options{}, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	svc := twins.New(eng, g, twins.Options{})
	data, err := os.ReadFile("testdata/models.json")
	if err != nil {
		t.Fatal(err)
	}
	var docs []json.RawMessage
	if err := json.Unmarshal(data, &docs); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := svc.AddModels(ctx, "test", docs); err != nil {
		t.Fatal(err)
	}
	for i := range nTwins {
		body := `{"$metadata":{"$model":"dtmi:test:Sensor;1"},"hvac":{"$metadata":{}}}`
		if _, _, err := svc.PutTwin(ctx, "test", fmt.Sprintf("s%d", i), []byte(body), twins.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	in, err := ingest.New(eng, g, opts)
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(httpapi.Config{Engine: eng, AllowAnonymous: true})
	api.RegisterTwins(svc)
	api.RegisterIngest(in)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &env{log: l, eng: eng, g: g, svc: svc, in: in, srv: srv}
}

// points returns every telemetry point in the log, in order, from either
// layout.
func (e *env) points(t testing.TB) []twingraph.TelemetryPoint {
	t.Helper()
	ctx := context.Background()
	var out []twingraph.TelemetryPoint
	for from := uint64(1); ; {
		evs, err := e.log.Read(ctx, from, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return out
		}
		for i := range evs {
			ev := &evs[i]
			switch ev.Type {
			case twingraph.TypeTelemetry:
				var p twingraph.Telemetry
				if err := twingraph.Decode(ev, &p); err != nil {
					t.Fatal(err)
				}
				out = append(out, twingraph.TelemetryPoint{Twin: p.Twin, Component: p.Component, MessageID: p.MessageID, SourceTime: p.SourceTime, Body: p.Body})
			case twingraph.TypeTelemetryBatch:
				err := twingraph.DecodeTelemetryBatch(ev.Payload, func(_ int, p *twingraph.TelemetryPoint) error {
					q := *p
					q.Body = append([]byte(nil), p.Body...)
					out = append(out, q)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		from = evs[len(evs)-1].Position + 1
	}
}
