package authz_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/authz"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/projections/twingraph"
)

type feed struct {
	t   *testing.T
	s   *authz.Store
	pos uint64
}

func (f *feed) apply(stream, typ string, p any) {
	f.t.Helper()
	var e event.Event
	var err error
	if stream == authz.Stream {
		b, _ := json.Marshal(p)
		e = event.Event{Stream: stream, Type: typ, Actor: "test", SchemaVersion: authz.SchemaVersion, Payload: b}
	} else if e, err = twingraph.NewEvent(stream, typ, "test", p); err != nil {
		f.t.Fatal(err)
	}
	f.pos++
	e.Position = f.pos
	if err := f.s.Apply([]event.Event{e}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *feed) rel(src, id, name, dst string) {
	f.apply(twingraph.TwinStream(src), twingraph.TypeRelationshipCreated, &twingraph.RelationshipState{Source: src, ID: id, Name: name, Target: dst, Properties: json.RawMessage(`{}`)})
}

func (f *feed) unrel(src, id string) {
	f.apply(twingraph.TwinStream(src), twingraph.TypeRelationshipDeleted, &twingraph.RelationshipRef{Source: src, ID: id})
}

type models map[string]string // model -> base

func (m models) IsOfModel(model, base string) bool {
	for ; model != ""; model = m[model] {
		if model == base {
			return true
		}
	}
	return false
}

func TestSubtreeFollowsGraph(t *testing.T) {
	f := &feed{t: t, s: authz.New(authz.Options{})}
	f.rel("A", "c1", "contains", "A-floor")
	f.rel("A-floor", "c2", "contains", "room")
	f.rel("room", "s1", "hasSensor", "sensor")
	f.rel("room", "adj", "adjacentTo", "other")
	f.apply(authz.Stream, authz.TypeGrantCreated, authz.Grant{ID: "gA", Principal: "user:alice", Role: authz.Reader,
		Scope: authz.Scope{Kind: authz.ScopeSubtree, Root: "A", Relationships: []string{"contains", "hasSensor"}}})
	f.apply(authz.Stream, authz.TypeGrantCreated, authz.Grant{ID: "gB", Principal: "user:bob", Role: authz.Writer,
		Scope: authz.Scope{Kind: authz.ScopeSubtree, Root: "B", Relationships: []string{"contains", "hasSensor"}}})
	alice := &authz.Principal{Subject: "user:alice"}
	bob := &authz.Principal{Subject: "user:bob"}
	check := func(step string, wantA, wantB []string) {
		t.Helper()
		if got := f.s.Reach("gA"); !slices.Equal(got, wantA) {
			t.Fatalf("%s: A reaches %v, want %v", step, got, wantA)
		}
		if got := f.s.Reach("gB"); !slices.Equal(got, wantB) {
			t.Fatalf("%s: B reaches %v, want %v", step, got, wantB)
		}
		for _, id := range []string{"room", "sensor"} {
			if got, want := f.s.Allowed(alice, authz.ActRead, id, "m"), slices.Contains(wantA, id); got != want {
				t.Fatalf("%s: alice read %s = %v, want %v", step, id, got, want)
			}
			if got, want := f.s.Allowed(bob, authz.ActWrite, id, "m"), slices.Contains(wantB, id); got != want {
				t.Fatalf("%s: bob write %s = %v, want %v", step, id, got, want)
			}
		}
	}
	check("initial", []string{"A", "A-floor", "room", "sensor"}, []string{"B"})
	// Move the room from building A to building B.
	f.rel("B", "c3", "contains", "B-floor")
	f.rel("B-floor", "c4", "contains", "room")
	check("linked to B", []string{"A", "A-floor", "room", "sensor"}, []string{"B", "B-floor", "room", "sensor"})
	f.unrel("A-floor", "c2")
	check("unlinked from A", []string{"A", "A-floor"}, []string{"B", "B-floor", "room", "sensor"})
	// A second path keeps a twin in the subtree when one is removed.
	f.rel("B", "c5", "contains", "room")
	f.unrel("B-floor", "c4")
	check("other path", []string{"A", "A-floor"}, []string{"B", "B-floor", "room", "sensor"})
	// A replaced relationship with a new target moves what it covers.
	f.rel("B", "c5", "contains", "A-floor")
	check("replaced", []string{"A", "A-floor"}, []string{"A-floor", "B", "B-floor"})
	f.apply(authz.Stream, authz.TypeGrantRevoked, map[string]string{"id": "gB"})
	if f.s.Allowed(bob, authz.ActWrite, "B", "m") {
		t.Fatal("revoked grant still allows")
	}
}

func TestDecisions(t *testing.T) {
	reg := models{"dtmi:Room;1": "dtmi:Space;1", "dtmi:Space;1": ""}
	f := &feed{t: t, s: authz.New(authz.Options{Models: func() authz.ModelChecker { return reg }})}
	for _, g := range []authz.Grant{
		{ID: "1", Principal: "group:ops", Role: authz.Reader, Scope: authz.Scope{Kind: authz.ScopeModel, Model: "dtmi:Space;1"}},
		{ID: "2", Principal: "apikey:k1", Role: authz.TelemetrySender, Scope: authz.Scope{Kind: authz.ScopeTwins, Twins: []string{"t1"}}},
		{ID: "3", Principal: "user:root", Role: authz.Owner, Scope: authz.Scope{Kind: authz.ScopeInstance}},
		{ID: "4", Principal: "user:hadmin", Role: authz.HandlerAdmin, Scope: authz.Scope{Kind: authz.ScopeInstance}},
		{ID: "5", Principal: "user:scoped-owner", Role: authz.Owner, Scope: authz.Scope{Kind: authz.ScopeTwins, Twins: []string{"t1"}}},
	} {
		f.apply(authz.Stream, authz.TypeGrantCreated, g)
	}
	ops := &authz.Principal{Subject: "user:carol", Groups: []string{"ops"}}
	key := &authz.Principal{Subject: "apikey:k1"}
	tests := []struct {
		name  string
		p     *authz.Principal
		a     authz.Action
		id, m string
		want  bool
	}{
		{"group reads derived model", ops, authz.ActRead, "r1", "dtmi:Room;1", true},
		{"group reads base model", ops, authz.ActRead, "s1", "dtmi:Space;1", true},
		{"group other model", ops, authz.ActRead, "x", "dtmi:Other;1", false},
		{"group unknown twin", ops, authz.ActRead, "x", "", false},
		{"reader cannot write", ops, authz.ActWrite, "r1", "dtmi:Room;1", false},
		{"reader reads models", ops, authz.ActReadModels, "", "", true},
		{"reader cannot write models", ops, authz.ActWriteModels, "", "", false},
		{"key sends telemetry", key, authz.ActTelemetry, "t1", "dtmi:Room;1", true},
		{"key other twin", key, authz.ActTelemetry, "t2", "dtmi:Room;1", false},
		{"key cannot read", key, authz.ActRead, "t1", "dtmi:Room;1", false},
		{"owner admin", &authz.Principal{Subject: "user:root"}, authz.ActAdmin, "", "", true},
		{"scoped owner not admin", &authz.Principal{Subject: "user:scoped-owner"}, authz.ActAdmin, "", "", false},
		{"scoped owner writes its twin", &authz.Principal{Subject: "user:scoped-owner"}, authz.ActWrite, "t1", "m", true},
		{"handler admin", &authz.Principal{Subject: "user:hadmin"}, authz.ActHandlers, "", "", true},
		{"handler admin no routes", &authz.Principal{Subject: "user:hadmin"}, authz.ActRoutes, "", "", false},
		{"stranger", &authz.Principal{Subject: "user:eve"}, authz.ActRead, "t1", "m", false},
		{"superuser", &authz.Principal{Subject: "admin", Superuser: true}, authz.ActAdmin, "", "", true},
	}
	for _, tc := range tests {
		if got := f.s.Allowed(tc.p, tc.a, tc.id, tc.m); got != tc.want {
			t.Errorf("%s: Allowed=%v, want %v", tc.name, got, tc.want)
		}
	}
	if v := f.s.Visible(&authz.Principal{Subject: "user:root"}); v != nil {
		t.Error("instance owner gets a filter, want none")
	}
	v := f.s.Visible(ops)
	if v == nil || !v("r1", "dtmi:Room;1") || v("x", "dtmi:Other;1") {
		t.Error("group visibility wrong")
	}
	if v := f.s.Visible(key); v == nil || v("t1", "dtmi:Room;1") {
		t.Error("telemetry sender sees twins")
	}
}

func TestGrantValidate(t *testing.T) {
	for _, g := range []authz.Grant{
		{Principal: "alice", Role: authz.Reader, Scope: authz.Scope{Kind: authz.ScopeInstance}},
		{Principal: "user:a", Role: "god", Scope: authz.Scope{Kind: authz.ScopeInstance}},
		{Principal: "user:a", Role: authz.Reader, Scope: authz.Scope{Kind: "galaxy"}},
		{Principal: "user:a", Role: authz.Reader, Scope: authz.Scope{Kind: authz.ScopeSubtree}},
		{Principal: "user:a", Role: authz.Reader, Scope: authz.Scope{Kind: authz.ScopeModel}},
		{Principal: "user:a", Role: authz.Reader, Scope: authz.Scope{Kind: authz.ScopeTwins}},
	} {
		if err := g.Validate(); err == nil {
			t.Errorf("%+v: valid, want an error", g)
		}
	}
}

// TestGrantsSurviveRestart writes grants through an engine and rebuilds a
// store from the log, as a restarted node does (from 0, or with Replay up to
// a twin-graph snapshot's position).
func TestGrantsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	log := memlog.New(memlog.Options{})
	s := authz.New(authz.Options{})
	eng, err := engine.New(log, engine.Options{}, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	g1, err := s.PutGrant(ctx, eng, "user:root", authz.Grant{Principal: "user:a", Role: authz.Reader, Scope: authz.Scope{Kind: authz.ScopeSubtree, Root: "B"}})
	if err != nil {
		t.Fatal(err)
	}
	g2, err := s.PutGrant(ctx, eng, "user:root", authz.Grant{Principal: "user:b", Role: authz.Writer, Scope: authz.Scope{Kind: authz.ScopeInstance}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutGrant(ctx, eng, "user:root", authz.Grant{Principal: "nobody", Role: authz.Reader}); engine.AsError(err).Kind != engine.KindInvalid {
		t.Fatalf("invalid grant: %v, want KindInvalid", err)
	}
	if err := s.RevokeGrant(ctx, eng, "user:root", g2.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeGrant(ctx, eng, "user:root", "nope"); engine.AsError(err).Kind != engine.KindNotFound {
		t.Fatalf("revoke unknown: %v, want KindNotFound", err)
	}
	eng.Stop()

	for _, restart := range []string{"engine", "replay"} {
		s2 := authz.New(authz.Options{})
		if restart == "replay" {
			if err := s2.Replay(ctx, log, eng.Applied()); err != nil {
				t.Fatal(err)
			}
		} else {
			e2, err := engine.New(log, engine.Options{}, s2)
			if err != nil {
				t.Fatal(err)
			}
			if err := e2.Start(ctx, nil); err != nil {
				t.Fatal(err)
			}
			e2.Stop()
		}
		got := s2.Grants()
		if len(got) != 1 || got[0].ID != g1.ID || got[0].CreatedBy != "user:root" || got[0].Created == 0 {
			t.Fatalf("%s: grants %+v, want only %s by user:root", restart, got, g1.ID)
		}
		if !slices.Equal(s2.Reach(g1.ID), []string{"B"}) {
			t.Fatalf("%s: reach %v", restart, s2.Reach(g1.ID))
		}
	}
}
