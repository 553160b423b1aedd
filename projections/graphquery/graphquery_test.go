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

// TestSeekerAgrees runs expansions whose twins come in ascending and in
// descending id order over the graph as it is and with its optional
// capabilities hidden (no Seeker, no Adjacency shortcut): the rows must be
// the same.
func TestSeekerAgrees(t *testing.T) {
	a := newGraph(t, 40)
	// Relationships whose targets descend as their ids ascend.
	for i := range 10 {
		src, dst := fmt.Sprintf("room-%03d", i), fmt.Sprintf("room-%03d", 39-i)
		a.apply(twingraph.TwinStream(src), twingraph.TypeRelationshipCreated, &twingraph.RelationshipState{
			Source: src, ID: fmt.Sprintf("far-%03d", i), Name: "next", Target: dst})
	}
	type plain struct{ query.Graph }
	ctx := context.Background()
	for _, text := range []string{
		"SELECT A.$dtId AS a, B.$dtId AS b FROM DIGITALTWINS A JOIN B RELATED A.next",
		"SELECT A.$dtId AS a, C.$dtId AS c FROM DIGITALTWINS A JOIN B RELATED A.next JOIN C RELATED B.next WHERE A.temperature > 65",
		"SELECT a.$dtId AS a, b.$dtId AS b FROM DIGITALTWINS MATCH (a)<-[:next]-(b)",
		"SELECT a.$dtId AS a, c.$dtId AS c FROM DIGITALTWINS MATCH (a)-[:next]-(b)-[:next]->(c) WHERE a.$dtId IN ['room-030', 'room-002', 'room-039']",
	} {
		snap := a.g.Snapshot()
		want, err := query.Run(ctx, plain{Wrap(snap)}, text, query.Options{PageSize: query.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		got, err := query.Run(ctx, Wrap(snap), text, query.Options{PageSize: query.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%s", got.Rows) != fmt.Sprintf("%s", want.Rows) || len(want.Rows) < 5 {
			t.Fatalf("%s\ngot  %s\nwant %s", text, got.Rows, want.Rows)
		}
	}
}
