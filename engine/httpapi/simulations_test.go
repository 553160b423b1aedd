package httpapi_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/httpapi"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/simulate"
	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/timetravel"
	"github.com/twinlog/twinlog/projections/twingraph"
)

func TestSimulationsAPI(t *testing.T) {
	l := memlog.New(memlog.Options{})
	g := twingraph.New(twingraph.Options{})
	eng, err := engine.New(l, engine.Options{}, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	tt, err := timetravel.New(l, g, timetravel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulate.New(l, tt, simulate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	api := httpapi.New(httpapi.Config{Engine: eng, Token: token})
	api.RegisterTwins(twins.New(eng, g, twins.Options{}))
	api.RegisterQuery(graphquery.New(g, graphquery.Options{}))
	api.RegisterSimulations(sim)
	srv := serveNode(t, api)
	t.Cleanup(srv.Close)
	must := func(r reply, status int) reply {
		t.Helper()
		if r.status != status {
			t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
		}
		return r
	}
	must(call(t, srv, "POST", "/models", roomModel), 201)
	must(call(t, srv, "PUT", "/digitaltwins/r1", `{"$metadata":{"$model":"dtmi:ex:Room;1"},"temperature":20}`), 200)
	fork := g.Snapshot().Position()
	must(call(t, srv, "PATCH", "/digitaltwins/r1", `[{"op":"replace","path":"/temperature","value":30}]`), 204)

	r := must(call(t, srv, "POST", "/simulations", `{"at":"`+strconv.FormatUint(fork, 10)+`","events":[{"twinId":"r1","patch":[{"op":"replace","path":"/temperature","value":25}]}]}`), 201)
	var created struct {
		ID       string `json:"id"`
		Position uint64 `json:"position"`
	}
	if err := json.Unmarshal([]byte(r.body), &created); err != nil {
		t.Fatal(err)
	}
	if created.Position != fork+1 {
		t.Fatalf("position=%d, want %d", created.Position, fork+1)
	}
	r = must(call(t, srv, "POST", "/simulations/"+created.ID+"/query", `{"query":"SELECT T.temperature FROM DIGITALTWINS T"}`), 200)
	if !strings.Contains(r.body, `"temperature":25`) {
		t.Fatalf("branch query: %s, want temperature 25", r.body)
	}
	r = must(call(t, srv, "GET", "/simulations/"+created.ID+"/digitaltwins/r1", ""), 200)
	if !strings.Contains(r.body, `"temperature":25`) {
		t.Fatalf("branch twin: %s", r.body)
	}
	r = must(call(t, srv, "GET", "/digitaltwins/r1", ""), 200)
	if !strings.Contains(r.body, `"temperature":30`) {
		t.Fatalf("main twin: %s, want temperature 30", r.body)
	}
	must(call(t, srv, "GET", "/simulations/"+created.ID, ""), 200)
	if r = must(call(t, srv, "GET", "/simulations", ""), 200); !strings.Contains(r.body, created.ID) {
		t.Fatalf("list: %s", r.body)
	}
	must(call(t, srv, "POST", "/simulations", `{"events":[{"twinId":"r1"}]}`), 400)
	must(call(t, srv, "POST", "/simulations", `{"at":"yesterday"}`), 400)
	if r = must(call(t, srv, "POST", "/simulations", `{"handlers":[{"name":"comfort"}]}`), 404); errCode(t, r) != "HandlerNotFound" {
		t.Fatalf("unknown handler: %s", r.body)
	}
	if r = must(call(t, srv, "POST", "/simulations", `{"handlers":[{"manifest":{"name":"x","triggers":[{"events":["telemetry"]}]}}]}`), 400); errCode(t, r) != "InvalidArgument" {
		t.Fatalf("manifest without module: %s", r.body)
	}
	if r = must(call(t, srv, "GET", "/simulations", ""), 200); strings.Count(r.body, `"id"`) != 1 {
		t.Fatalf("failed creates left branches: %s", r.body)
	}
	must(call(t, srv, "DELETE", "/simulations/"+created.ID, ""), 204)
	must(call(t, srv, "GET", "/simulations/"+created.ID, ""), 404)
}
