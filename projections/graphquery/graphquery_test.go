package graphquery

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/query"
	"github.com/twinlog/twinlog/projections/twingraph"
)

type applier struct {
	t   *testing.T
	g   *twingraph.Graph
	pos uint64
}

func (a *applier) apply(stream, typ string, p any) {
	a.t.Helper()
	e, err := twingraph.NewEvent(stream, typ, "test", p)
	if err != nil {
		a.t.Fatal(err)
	}
	a.pos++
	e.Position = a.pos
	e.Time = int64(a.pos) * 1e9
	if err := a.g.Apply([]event.Event{e}); err != nil {
		a.t.Fatalf("apply %s: %v", typ, err)
	}
}

const roomModel = "dtmi:test:Room;1"

func newGraph(t *testing.T, rooms int) *applier {
	a := &applier{t: t, g: twingraph.New(twingraph.Options{})}
	a.apply(twingraph.ModelsStream, twingraph.TypeModelUploaded, &twingraph.ModelsUploaded{Models: []json.RawMessage{json.RawMessage(
		`{"@context":"dtmi:dtdl:context;3","@id":"` + roomModel + `","@type":"Interface","contents":[
		 {"@type":"Property","name":"temperature","schema":"double"},{"@type":"Property","name":"name","schema":"string"},
		 {"@type":"Relationship","name":"next"}]}`)}})
	for i := range rooms {
		a.addRoom(i)
	}
	return a
}

func (a *applier) addRoom(i int) {
	id := fmt.Sprintf("room-%03d", i)
	a.apply(twingraph.TwinStream(id), twingraph.TypeTwinCreated, &twingraph.TwinState{ID: id, Model: roomModel,
		SectionState: twingraph.SectionState{Properties: map[string]json.RawMessage{
			"temperature": json.RawMessage(fmt.Sprint(60 + i)), "name": json.RawMessage(fmt.Sprintf(`"Room %d"`, i))}}})
	prev := fmt.Sprintf("room-%03d", i-1)
	if _, ok := a.g.Snapshot().Twin(prev); ok {
		a.apply(twingraph.TwinStream(id), twingraph.TypeRelationshipCreated, &twingraph.RelationshipState{
			Source: id, ID: "next-" + prev, Name: "next", Target: prev, Properties: json.RawMessage(`{"weight":2}`)})
	}
}

func TestRunOverTwinGraph(t *testing.T) {
	a := newGraph(t, 5)
	ctx := context.Background()
	for _, tc := range []struct{ name, query, want string }{
		{"count", "SELECT COUNT() FROM DIGITALTWINS WHERE IS_OF_MODEL('dtmi:test:Room;1') AND temperature > 61", `{"COUNT":3}`},
		{"project", "SELECT T.name, T.$metadata.$model AS m FROM DIGITALTWINS T WHERE T.$dtId = 'room-002'", `{"name":"Room 2","m":"dtmi:test:Room;1"}`},
		{"join", "SELECT B.$dtId AS b, R.weight AS w FROM DIGITALTWINS A JOIN B RELATED A.next R WHERE A.$dtId = 'room-004'", `{"b":"room-003","w":2}`},
		{"match", "SELECT COUNT() FROM DIGITALTWINS MATCH (a)-[:next*..3]->(b) WHERE a.$dtId = 'room-004'", `{"COUNT":3}`},
		{"rels", "SELECT R.$targetId AS t FROM RELATIONSHIPS R WHERE R.$sourceId = 'room-001'", `{"t":"room-000"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Run(ctx, a.g, tc.query, query.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Rows) != 1 || string(res.Rows[0]) != tc.want {
				t.Fatalf("rows = %s, want %s", res.Rows, tc.want)
			}
		})
	}
}

// TestPagingReadsOneSnapshot writes between pages: the page sequence still
// returns the rows of the first page's snapshot, each once.
func TestPagingReadsOneSnapshot(t *testing.T) {
	a := newGraph(t, 10)
	r := New(a.g, Options{})
	ctx := context.Background()
	req := Request{Query: "SELECT T.$dtId AS id FROM DIGITALTWINS T", PageSize: 3}
	seen := map[string]bool{}
	pages := 0
	for {
		res, err := r.Run(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, row := range res.Rows {
			if seen[string(row)] {
				t.Fatalf("row %s repeated", row)
			}
			seen[string(row)] = true
		}
		a.addRoom(100 + pages) // a concurrent write
		if res.ContinuationToken == "" {
			break
		}
		req = Request{ContinuationToken: res.ContinuationToken, PageSize: 3}
	}
	if len(seen) != 10 || pages != 4 {
		t.Fatalf("got %d rows in %d pages, want 10 in 4", len(seen), pages)
	}
}

func TestExpiredToken(t *testing.T) {
	a := newGraph(t, 4)
	r := New(a.g, Options{MaxPinned: 1})
	ctx := context.Background()
	res, err := r.Run(ctx, Request{Query: "SELECT * FROM DIGITALTWINS", PageSize: 1})
	if err != nil || res.ContinuationToken == "" {
		t.Fatalf("first page: %v", err)
	}
	a.addRoom(50)
	if _, err := r.Run(ctx, Request{Query: "SELECT * FROM DIGITALTWINS", PageSize: 1}); err != nil {
		t.Fatal(err) // pins the newer snapshot, evicting the first
	}
	if _, err := r.Run(ctx, Request{ContinuationToken: res.ContinuationToken}); err == nil {
		t.Fatal("continuing on a released snapshot succeeded")
	}
}

// TestRunnerPlansFollowModels checks that the Runner's cached plans see a
// model uploaded after them: IS_OF_MODEL(Room) must then also match twins
// of a model that extends Room.
func TestRunnerPlansFollowModels(t *testing.T) {
	a := newGraph(t, 3)
	r := New(a.g, Options{})
	ctx := context.Background()
	count := func(id string) string {
		t.Helper()
		res, err := r.Run(ctx, Request{Query: "SELECT COUNT() FROM DIGITALTWINS T WHERE IS_OF_MODEL('" + id + "')"})
		if err != nil {
			t.Fatal(err)
		}
		return string(res.Rows[0])
	}
	if got := count(roomModel); got != `{"COUNT":3}` {
		t.Fatalf("rooms = %s, want 3", got)
	}
	const suite = "dtmi:test:Suite;1"
	a.apply(twingraph.ModelsStream, twingraph.TypeModelUploaded, &twingraph.ModelsUploaded{Models: []json.RawMessage{json.RawMessage(
		`{"@context":"dtmi:dtdl:context;3","@id":"` + suite + `","@type":"Interface","extends":"` + roomModel + `"}`)}})
	a.apply(twingraph.TwinStream("suite-1"), twingraph.TypeTwinCreated, &twingraph.TwinState{ID: "suite-1", Model: suite})
	if got := count(roomModel); got != `{"COUNT":4}` {
		t.Fatalf("rooms after a model extending Room = %s, want 4", got)
	}
	if got := count(suite); got != `{"COUNT":1}` {
		t.Fatalf("suites = %s, want 1", got)
	}
}

// TestCapabilitiesAgree runs expansions whose twins come in ascending and
// in descending id order, and model scans with number conditions, over the
// graph as the Runner reads it and with its optional capabilities hidden
// (no Seeker, no Adjacency shortcut, no NumberScanner): the rows must be
// the same, before and after patches.
func TestCapabilitiesAgree(t *testing.T) {
	a := newGraph(t, 40)
	// Relationships whose targets descend as their ids ascend.
	for i := range 10 {
		src, dst := fmt.Sprintf("room-%03d", i), fmt.Sprintf("room-%03d", 39-i)
		a.apply(twingraph.TwinStream(src), twingraph.TypeRelationshipCreated, &twingraph.RelationshipState{
			Source: src, ID: fmt.Sprintf("far-%03d", i), Name: "next", Target: dst})
	}
	const suite = "dtmi:test:Suite;1"
	a.apply(twingraph.ModelsStream, twingraph.TypeModelUploaded, &twingraph.ModelsUploaded{Models: []json.RawMessage{json.RawMessage(
		`{"@context":"dtmi:dtdl:context;3","@id":"` + suite + `","@type":"Interface","extends":"` + roomModel + `"}`)}})
	for i := range 5 {
		id := fmt.Sprintf("room-%03d-suite", i*7)
		a.apply(twingraph.TwinStream(id), twingraph.TypeTwinCreated, &twingraph.TwinState{ID: id, Model: suite,
			SectionState: twingraph.SectionState{Properties: map[string]json.RawMessage{"temperature": json.RawMessage(fmt.Sprint(70 + i))}}})
	}
	type plain struct{ query.Graph }
	cols := twingraph.NewNumberColumns()
	ctx := context.Background()
	texts := []string{
		"SELECT A.$dtId AS a, B.$dtId AS b FROM DIGITALTWINS A JOIN B RELATED A.next",
		"SELECT A.$dtId AS a, C.$dtId AS c FROM DIGITALTWINS A JOIN B RELATED A.next JOIN C RELATED B.next WHERE A.temperature > 65",
		"SELECT a.$dtId AS a, b.$dtId AS b FROM DIGITALTWINS MATCH (a)<-[:next]-(b)",
		"SELECT a.$dtId AS a, c.$dtId AS c FROM DIGITALTWINS MATCH (a)-[:next]-(b)-[:next]->(c) WHERE a.$dtId IN ['room-030', 'room-002', 'room-039']",
		"SELECT T.$dtId FROM DIGITALTWINS T WHERE IS_OF_MODEL('" + roomModel + "') AND T.temperature > 72",
		"SELECT T.$dtId FROM DIGITALTWINS T WHERE IS_OF_MODEL('" + roomModel + "', exact) AND T.temperature <= 64",
		"SELECT TOP(3) T.$dtId FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, '" + roomModel + "') AND T.temperature >= 90 AND T.name != 'Room 33'",
		"SELECT COUNT() FROM DIGITALTWINS T WHERE IS_OF_MODEL('" + roomModel + "') AND T.temperature < 80",
		"SELECT T.$dtId, B.$dtId AS b FROM DIGITALTWINS T JOIN B RELATED T.next WHERE IS_OF_MODEL(T, '" + roomModel + "') AND T.temperature > 95",
	}
	compare := func(step string) {
		t.Helper()
		snap := a.g.Snapshot()
		for _, text := range texts {
			for _, size := range []int{query.MaxPageSize, 4} {
				want, err := query.Run(ctx, plain{Wrap(snap)}, text, query.Options{PageSize: size})
				if err != nil {
					t.Fatal(err)
				}
				got, err := query.Run(ctx, graph{snap, cols}, text, query.Options{PageSize: size})
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprintf("%s %s", got.Rows, got.ContinuationToken) != fmt.Sprintf("%s %s", want.Rows, want.ContinuationToken) || len(want.Rows) == 0 {
					t.Fatalf("%s: %s (page size %d)\ngot  %s\nwant %s", step, text, size, got.Rows, want.Rows)
				}
			}
		}
	}
	compare("created")
	for i := 0; i < 40; i += 3 {
		id := fmt.Sprintf("room-%03d", i)
		a.apply(twingraph.TwinStream(id), twingraph.TypeTwinPatched, &twingraph.TwinPatched{ID: id,
			SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"temperature": json.RawMessage(fmt.Sprint(100 - i))}}})
	}
	compare("patched")
	if cols.Len() == 0 {
		t.Fatal("the number columns were not used")
	}
}
