package devices_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/devices"
	"github.com/twinlog/twinlog/projections/twingraph"
)

func newService(t *testing.T) (*memlog.Log, *twins.Service) {
	t.Helper()
	l := memlog.New(memlog.Options{})
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
	model := `{"@context":"dtmi:dtdl:context;3","@id":"dtmi:t:D;1","@type":"Interface","contents":[{"@type":"Telemetry","name":"v","schema":"double"}]}`
	if _, err := svc.AddModels(context.Background(), "test", []json.RawMessage{json.RawMessage(model)}); err != nil {
		t.Fatal(err)
	}
	return l, svc
}

func TestRegistryIDs(t *testing.T) {
	l, svc := newService(t)
	r, err := devices.Open(t.Context(), l, svc, devices.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, id string
		ok       bool
	}{
		{"plain", "dev-1", true},
		{"unicode", "capteur-été", true},
		{"empty", "", false},
		{"slash", "a/b", false},
		{"plus", "a+b", false},
		{"hash", "a#", false},
		{"dollar", "$sys", false},
		{"control", "a\x01", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, key, _, err := r.Put(t.Context(), "test", tt.id, devices.PutRequest{})
			if (err == nil) != tt.ok {
				t.Fatalf("Put(%q) err=%v, want ok=%v", tt.id, err, tt.ok)
			}
			if tt.ok && (!r.Authenticate(tt.id, []byte(key)) || r.Authenticate(tt.id, []byte(key[1:]))) {
				t.Fatalf("Authenticate(%q) does not check the key", tt.id)
			}
		})
	}
}

// TestRegistryTwoWriters: two registries over one log (two nodes) do not
// lose each other's writes, and a twin mirrors one device only.
func TestRegistryTwoWriters(t *testing.T) {
	l, svc := newService(t)
	a, err := devices.Open(t.Context(), l, svc, devices.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := devices.Open(t.Context(), l, svc, devices.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := a.Put(t.Context(), "test", "d1", devices.PutRequest{ModelID: "dtmi:t:D;1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := b.Put(t.Context(), "test", "d2", devices.PutRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := a.Put(t.Context(), "test", "d3", devices.PutRequest{TwinID: "d2"}); engine.AsError(err).Code != "DeviceTwinConflict" {
		t.Fatalf("second device on twin d2: %v, want DeviceTwinConflict", err)
	}
	if got := len(a.List()); got != 2 {
		t.Fatalf("a lists %d devices, want 2", got)
	}
	if tw, ok := a.TwinOf("d1"); !ok || tw != "d1" {
		t.Fatalf("TwinOf(d1) = %q %v", tw, ok)
	}
	if _, ok := a.TwinOf("d2"); ok {
		t.Fatal("unprovisioned d2 resolves to a twin")
	}
	if _, err := a.Provision(t.Context(), "d2", "dtmi:t:Nope;1"); engine.AsError(err).Code != "ModelNotFound" {
		t.Fatalf("provision with an unknown model: %v", err)
	}
	if d, err := a.Provision(t.Context(), "d2", "dtmi:t:D;1"); err != nil || !d.Provisioned {
		t.Fatalf("provision: %+v %v", d, err)
	}
	if err := b.Delete(t.Context(), "test", "d1"); err != nil {
		t.Fatal(err)
	}
	c, err := devices.Open(t.Context(), l, svc, devices.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("d1"); ok {
		t.Fatal("deleted device reopened")
	}
	if d, ok := c.Get("d2"); !ok || !d.Provisioned || d.ModelID != "dtmi:t:D;1" {
		t.Fatalf("reopened d2: %+v", d)
	}
}
