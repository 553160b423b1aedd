package handlers_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/authz"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/handlers"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// TestHandlerGrants checks that a handler acts as its own principal with
// the grants of its manifest: it sees events of the twins it may read only,
// reads only those twins, and writes only where a grant lets it; a new
// version replaces the grants, deleting the handler revokes them.
func TestHandlerGrants(t *testing.T) {
	ctx := context.Background()
	g := twingraph.New(twingraph.Options{})
	grants := authz.New(authz.Options{
		Models:   func() authz.ModelChecker { return g.Snapshot().Models() },
		Outgoing: authz.GraphOutgoing(g),
	})
	eng, err := engine.New(memlog.New(memlog.Options{}), engine.Options{}, g, grants)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer eng.Stop()
	svc := twins.New(eng, g, twins.Options{})
	mgr, err := handlers.New(eng, svc, handlers.Options{Grants: grants, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	n := &node{log: eng.Log(), eng: eng, svc: svc, mgr: mgr}

	b := building{floors: 2, rooms: 3}
	b.create(t, svc)
	trigger := []handlers.Trigger{{Events: []string{"telemetry"}, Models: []string{sensorModel}}}

	// A manifest without grants is refused where access control is on.
	if _, err := mgr.Deploy(ctx, "test", handlers.Manifest{Name: "comfort", Triggers: trigger}, modules["comfort"]); engine.AsError(err).Code != "InvalidManifest" {
		t.Fatalf("deploy without grants: %v", err)
	}

	// Floor 0: sensors readable, rooms writable. Room (1,0): sensors and
	// room readable, room not writable. Room (1,1): sensors readable, room
	// hidden. Room (1,2): nothing readable.
	sensors := func(f, r int) []string {
		var ids []string
		for k := range kinds {
			ids = append(ids, sensorID(f, r, k))
		}
		return ids
	}
	readable := slices.Concat(sensors(0, 0), sensors(0, 1), sensors(0, 2), sensors(1, 0), sensors(1, 1), []string{roomID(1, 0)})
	twinsScope := func(ids ...string) authz.Scope { return authz.Scope{Kind: authz.ScopeTwins, Twins: ids} }
	n.deploy(t, "comfort", handlers.Manifest{Name: "comfort", Version: "1", Triggers: trigger, Grants: []handlers.Access{
		{Role: authz.Reader, Scope: twinsScope(readable...)},
		{Role: authz.Writer, Scope: authz.Scope{Kind: authz.ScopeSubtree, Root: floorID(0), Relationships: []string{"contains"}}},
	}})
	const rounds = 2
	for i := range rounds {
		b.send(t, svc, i)
	}
	n.settle(t)

	for r := range b.rooms {
		if prop(t, svc, roomID(0, r), "comfort") == nil {
			t.Errorf("%s: no comfort, though the handler may write it", roomID(0, r))
		}
		if c := prop(t, svc, roomID(1, r), "comfort"); c != nil {
			t.Errorf("%s: comfort %v written by a handler with no grant to write it", roomID(1, r), c)
		}
	}
	st, err := mgr.Get(ctx, "comfort")
	if err != nil {
		t.Fatal(err)
	}
	// Room (1,1)'s sensors are seen but their room is hidden: the handler
	// finds no room and writes nothing, so only room (1,0)'s writes are
	// denied.
	if want := uint64(len(kinds) * rounds); st.Stats.Denied != want || st.Stats.Hidden != want {
		t.Errorf("denied %d, hidden %d; want %d and %d", st.Stats.Denied, st.Stats.Hidden, want, want)
	}
	if i := slices.IndexFunc(st.Reports, func(r handlers.Report) bool { return r.Kind == "denied" }); i < 0 ||
		!strings.Contains(st.Reports[i].Message, roomID(1, 0)) || !strings.Contains(st.Reports[i].Message, "handler:comfort") {
		t.Errorf("no report of the denied write to %s: %+v", roomID(1, 0), st.Reports)
	}
	// Version 2 may write every room: its grants replace version 1's.
	n.deploy(t, "comfort", handlers.Manifest{Name: "comfort", Version: "2", Triggers: trigger, Grants: []handlers.Access{
		{Role: authz.Writer, Scope: authz.Scope{Kind: authz.ScopeModel, Model: roomModel}},
		{Role: authz.Reader, Scope: authz.Scope{Kind: authz.ScopeModel, Model: sensorModel}},
	}})
	gs := grants.GrantsOf(authz.HandlerPrincipal("comfort"))
	if len(gs) != 2 || gs[0].Scope.Model != roomModel || gs[1].Scope.Model != sensorModel || gs[0].CreatedBy != "test" {
		t.Fatalf("grants after the roll: %+v", gs)
	}
	b.send(t, svc, rounds)
	n.settle(t)
	b.checkRooms(t, svc, rounds)

	if err := mgr.Delete(ctx, "test", "comfort"); err != nil {
		t.Fatal(err)
	}
	if gs := grants.GrantsOf(authz.HandlerPrincipal("comfort")); len(gs) != 0 {
		t.Fatalf("grants after delete: %+v", gs)
	}
}

// checkRooms compares every room's comfort with its expected value after
// round last.
func (b building) checkRooms(t testing.TB, svc *twins.Service, last int) {
	t.Helper()
	for f := range b.floors {
		for r := range b.rooms {
			v := func(k int) float64 { return reading(f, r, k, last) }
			if got, want := prop(t, svc, roomID(f, r), "comfort"), comfort(v(0), v(1), v(2), v(3)); got != want {
				t.Errorf("%s comfort = %v, want %v", roomID(f, r), got, want)
			}
		}
	}
}
