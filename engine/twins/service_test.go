package twins_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/projections/twingraph"
)

type env struct {
	t   testing.TB
	ctx context.Context
	log eventlog.Log
	eng *engine.Engine
	g   *twingraph.Graph
	svc *twins.Service
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, memlog.New(memlog.Options{}))
}

func newEnvOn(t testing.TB, l eventlog.Log) *env {
	t.Helper()
	g := twingraph.New(twingraph.Options{})
	eng, err := engine.New(l, engine.Options{MaxRetries: 1000}, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	return &env{t: t, ctx: context.Background(), log: l, eng: eng, g: g, svc: twins.New(eng, g, twins.Options{})}
}

func loadModels(t testing.TB) []json.RawMessage {
	t.Helper()
	data, err := os.ReadFile("testdata/models.json")
	if err != nil {
		t.Fatal(err)
	}
	var docs []json.RawMessage
	if err := json.Unmarshal(data, &docs); err != nil {
		t.Fatal(err)
	}
	return docs
}

// withModels returns an env with testdata/models.json uploaded.
func withModels(t testing.TB) *env {
	e := newEnv(t)
	if _, err := e.svc.AddModels(e.ctx, "test", loadModels(t)); err != nil {
		t.Fatalf("AddModels: %v", err)
	}
	return e
}

func code(err error) string {
	if err == nil {
		return ""
	}
	var e *engine.Error
	if !errors.As(err, &e) {
		return "not an *engine.Error: " + err.Error()
	}
	return e.Code
}

func (e *env) put(id, body string) string {
	e.t.Helper()
	_, etag, err := e.svc.PutTwin(e.ctx, "test", id, []byte(body), twins.Cond{})
	if err != nil {
		e.t.Fatalf("PutTwin %s: %v", id, err)
	}
	return etag
}

func (e *env) rel(src, id, name, target string) string {
	e.t.Helper()
	body := `{"$targetId":"` + target + `","$relationshipName":"` + name + `"}`
	_, etag, err := e.svc.PutRelationship(e.ctx, "test", src, id, []byte(body), twins.Cond{})
	if err != nil {
		e.t.Fatalf("PutRelationship %s/%s: %v", src, id, err)
	}
	return etag
}

func (e *env) twin(id string) map[string]any {
	e.t.Helper()
	body, _, err := e.svc.GetTwin(e.ctx, id)
	if err != nil {
		e.t.Fatalf("GetTwin %s: %v", id, err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		e.t.Fatalf("GetTwin %s: bad JSON %s: %v", id, body, err)
	}
	return m
}

const roomBody = `{"$metadata":{"$model":"dtmi:test:Room;1"},"name":"r1","temperature":21.5,"thermostat":{}}`
