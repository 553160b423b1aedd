package timetravel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/filelog"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/query"
	"github.com/twinlog/twinlog/projections/timetravel"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// clock is a log clock that moves one minute per reading, so every append
// has its own time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Minute)
	return c.t
}

type env struct {
	t   testing.TB
	ctx context.Context
	log eventlog.Log
	eng *engine.Engine
	g   *twingraph.Graph
	svc *twins.Service
}

func newEnv(t testing.TB, l eventlog.Log, g *twingraph.Graph) *env {
	t.Helper()
	eng, err := engine.New(l, engine.Options{From: g.Position()}, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	return &env{t: t, ctx: context.Background(), log: l, eng: eng, g: g, svc: twins.New(eng, g, twins.Options{})}
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) put(id, body string) {
	e.t.Helper()
	_, _, err := e.svc.PutTwin(e.ctx, "user:alice", id, []byte(body), twins.Cond{})
	e.must(err)
}

func (e *env) patch(id, patch string) {
	e.t.Helper()
	_, err := e.svc.PatchTwin(e.ctx, "user:bob", id, []byte(patch), twins.Cond{})
	e.must(err)
}

func (e *env) rel(src, id, name, tgt string) {
	e.t.Helper()
	_, _, err := e.svc.PutRelationship(e.ctx, "user:alice", src, id, []byte(fmt.Sprintf(`{"$targetId":%q,"$relationshipName":%q}`, tgt, name)), twins.Cond{})
	e.must(err)
}

func loadModels(t testing.TB) []json.RawMessage {
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

// point is a moment of the scenario: the log position and time after a
// step.
type point struct {
	name string
	pos  uint64
	tm   time.Time
}

func (e *env) mark(name string) point {
	e.t.Helper()
	head, err := e.log.Head(e.ctx)
	e.must(err)
	evs, err := e.log.Read(e.ctx, head, 1)
	e.must(err)
	return point{name: name, pos: head, tm: evs[0].Timestamp()}
}

const (
	roomBody   = `{"$metadata":{"$model":"dtmi:test:Room;1"},"name":"r","temperature":21.5,"thermostat":{}}`
	sensorBody = `{"$metadata":{"$model":"dtmi:test:Sensor;1"},"value":1}`
	floorBody  = `{"$metadata":{"$model":"dtmi:test:Floor;1"},"name":"f"}`
)

// scenario writes a history through the twin service: twins added,
// patched, relationships moved, a twin deleted, a model decommissioned and
// a second model version in use. It returns a point after each step.
func scenario(e *env) []point {
	var pts []point
	e.must(func() error { _, err := e.svc.AddModels(e.ctx, "user:alice", loadModels(e.t)); return err }())
	pts = append(pts, e.mark("models"))
	e.put("floor1", floorBody)
	e.put("room1", roomBody)
	e.put("room2", roomBody)
	e.put("s1", sensorBody)
	e.rel("floor1", "c1", "contains", "room1")
	e.rel("room1", "hs1", "hasSensor", "s1")
	pts = append(pts, e.mark("built"))
	e.patch("room1", `[{"op":"replace","path":"/temperature","value":23}]`)
	e.patch("room2", `[{"op":"add","path":"/capacity","value":8}]`)
	pts = append(pts, e.mark("patched"))
	// Move the sensor from room1 to room2.
	e.must(e.svc.DeleteRelationship(e.ctx, "user:alice", "room1", "hs1", twins.Cond{}))
	e.rel("room2", "hs1", "hasSensor", "s1")
	e.rel("floor1", "c2", "contains", "room2")
	pts = append(pts, e.mark("moved"))
	e.put("gone", sensorBody)
	pts = append(pts, e.mark("gone-created"))
	e.must(e.svc.DeleteTwin(e.ctx, "user:alice", "gone", twins.Cond{}))
	e.patch("room1", `[{"op":"replace","path":"/temperature","value":19.5},{"op":"add","path":"/tags","value":{"k":"v"}}]`)
	pts = append(pts, e.mark("deleted"))
	v2 := `[{"@context":"dtmi:dtdl:context;3","@id":"dtmi:test:Room;2","@type":"Interface","extends":"dtmi:test:Thing;1",
		"contents":[{"@type":"Property","name":"temperature","schema":"double","writable":true},
		{"@type":"Property","name":"co2","schema":"double","writable":true},
		{"@type":"Component","name":"thermostat","schema":"dtmi:test:Thermostat;1"},
		{"@type":"Relationship","name":"hasSensor"}]}]`
	e.must(func() error {
		_, err := e.svc.AddModels(e.ctx, "user:alice", []json.RawMessage{json.RawMessage(strings.Trim(v2, "[]"))})
		return err
	}())
	e.must(e.svc.DecommissionModel(e.ctx, "user:alice", "dtmi:test:Floor;1", []byte(`[{"op":"replace","path":"/decommissioned","value":true}]`)))
	e.patch("room2", `[{"op":"replace","path":"/$metadata/$model","value":"dtmi:test:Room;2"},{"op":"remove","path":"/capacity"},{"op":"remove","path":"/name"},{"op":"add","path":"/co2","value":410}]`)
	pts = append(pts, e.mark("model-v2"))
	e.put("room3", `{"$metadata":{"$model":"dtmi:test:Room;2"},"temperature":20,"thermostat":{}}`)
	e.patch("room3", `[{"op":"add","path":"/co2","value":600}]`)
	pts = append(pts, e.mark("end"))
	return pts
}

// dump renders every twin (with its outgoing and incoming relationships),
// the models and the position of a view.
func dump(s *twingraph.Snapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "position %d models %d\n", s.Position(), s.ModelsVersion())
	for t := range s.Twins() {
		b.Write(t.AppendJSON(nil))
		fmt.Fprintf(&b, " v%d\n", t.Version)
		for r := range s.Outgoing(t.ID, "") {
			b.WriteString("  out ")
			b.Write(r.AppendJSON(nil))
			b.WriteByte('\n')
		}
		for r := range s.Incoming(t.ID) {
			fmt.Fprintf(&b, "  in %s/%s\n", r.Source, r.ID)
		}
	}
	for m := range s.ModelRecords() {
		fmt.Fprintf(&b, "model %s %d %v\n", m.ID, m.Uploaded, m.Decommissioned)
	}
	fmt.Fprintf(&b, "registry %v\n", s.Models().IDs())
	return b.String()
}

// replayed returns the graph replayed from scratch to pos.
func replayed(t testing.TB, l eventlog.Log, pos uint64) *twingraph.Snapshot {
	t.Helper()
	g := twingraph.New(twingraph.Options{})
	if pos == 0 {
		return g.Snapshot()
	}
	evs, err := l.Read(context.Background(), 1, int(pos))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Apply(evs); err != nil {
		t.Fatal(err)
	}
	return g.Snapshot()
}

func rows(t testing.TB, res *query.Result) string {
	t.Helper()
	var b strings.Builder
	for _, r := range res.Rows {
		b.Write(r)
		b.WriteByte('\n')
	}
	return b.String()
}

var scenarioQueries = []string{
	"SELECT * FROM DIGITALTWINS",
	"SELECT * FROM RELATIONSHIPS",
	"SELECT T.$dtId, T.temperature FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, 'dtmi:test:Thing;1') ORDER BY T.$dtId",
	"SELECT room FROM DIGITALTWINS MATCH (floor)-[:contains]->(room) WHERE floor.$dtId = 'floor1'",
	"SELECT S.$dtId FROM DIGITALTWINS R JOIN S RELATED R.hasSensor WHERE R.$dtId = 'room2'",
	"SELECT COUNT() FROM DIGITALTWINS WHERE IS_OF_MODEL('dtmi:test:Room;2')",
}

// TestAsOfScenario checks that the graph as of every point of a scenario,
// by position and by time, with and without checkpoints, equals the log
// replayed from scratch to that point; and that AS OF queries answer what
// the same query answers on that replayed graph.
func TestAsOfScenario(t *testing.T) {
	clk := newClock()
	l := memlog.New(memlog.Options{Now: clk.Now})
	e := newEnv(t, l, twingraph.New(twingraph.Options{}))
	pts := scenario(e)
	ctx := context.Background()

	cpDir := t.TempDir()
	n, err := timetravel.Backfill(ctx, l, cpDir, twingraph.Options{}, timetravel.CheckpointOptions{Every: 4})
	if err != nil || n == 0 {
		t.Fatalf("backfill wrote %d: %v", n, err)
	}
	configs := []struct {
		name string
		opts timetravel.Options
	}{
		{"no-checkpoints", timetravel.Options{}},
		{"checkpoints", timetravel.Options{Dirs: []string{cpDir}}},
		{"cache=1", timetravel.Options{Dirs: []string{cpDir}, CacheEntries: 1, ReadBatch: 3}},
	}
	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			tt, err := timetravel.New(l, e.g, cfg.opts)
			if err != nil {
				t.Fatal(err)
			}
			// Visit the points out of order, twice, so builds start from
			// checkpoints, cached tips and the cache itself.
			order := append(append([]point{}, pts...), pts...)
			for i := range order {
				j := (i * 5) % len(order)
				order[i], order[j] = order[j], order[i]
			}
			for _, p := range order {
				want := dump(replayed(t, l, p.pos))
				for _, at := range []timetravel.At{{Position: p.pos}, {Time: p.tm}, {Time: p.tm.Add(30 * time.Second)}} {
					snap, err := tt.AsOf(ctx, at)
					if err != nil {
						t.Fatalf("%s at %v: %v", p.name, at, err)
					}
					if got := dump(snap); got != want {
						t.Fatalf("%s at %v:\n%s\nwant:\n%s", p.name, at, got, want)
					}
				}
				for _, q := range scenarioQueries {
					want, err := graphquery.Run(ctx, staticSource{replayed(t, l, p.pos)}, q, query.Options{})
					if err != nil {
						t.Fatalf("%s: %s: %v", p.name, q, err)
					}
					for _, text := range []string{q + " AS OF " + fmt.Sprint(p.pos), q + " AS OF '" + p.tm.Format(time.RFC3339Nano) + "'"} {
						got, err := tt.Query(ctx, graphquery.Request{Query: text}, timetravel.At{}, graphquery.Options{})
						if err != nil {
							t.Fatalf("%s: %v", text, err)
						}
						if rows(t, got) != rows(t, want) {
							t.Fatalf("%s:\n%s\nwant:\n%s", text, rows(t, got), rows(t, want))
						}
					}
					got, err := tt.Query(ctx, graphquery.Request{Query: q}, timetravel.At{Position: p.pos}, graphquery.Options{})
					if err != nil || rows(t, got) != rows(t, want) {
						t.Fatalf("%s asOf=%d: %v\n%s\nwant:\n%s", q, p.pos, err, rows(t, got), rows(t, want))
					}
				}
			}
			t.Logf("%+v", tt.Stats())
		})
	}
	// A cold read starts from the newest checkpoint before it.
	tt, err := timetravel.New(l, nil, timetravel.Options{Dirs: []string{cpDir}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tt.AsOf(ctx, timetravel.At{Position: pts[len(pts)-1].pos}); err != nil {
		t.Fatal(err)
	}
	if st := tt.Stats(); st.Loaded != 1 || st.Replayed >= 4 {
		t.Fatalf("cold read: %+v, want one checkpoint loaded and under 4 events replayed", st)
	}
}

type staticSource struct{ s *twingraph.Snapshot }

func (s staticSource) Snapshot() *twingraph.Snapshot { return s.s }

// TestAsOfPoints checks specific facts of the scenario at its points:
// deleted twins and moved relationships are there when they existed.
func TestAsOfPoints(t *testing.T) {
	clk := newClock()
	l := memlog.New(memlog.Options{Now: clk.Now})
	e := newEnv(t, l, twingraph.New(twingraph.Options{}))
	pts := scenario(e)
	byName := map[string]point{}
	for _, p := range pts {
		byName[p.name] = p
	}
	tt, err := timetravel.New(l, e.g, timetravel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	q := func(at string, text string) string {
		t.Helper()
		res, err := tt.Query(ctx, graphquery.Request{Query: text + " AS OF " + at}, timetravel.At{}, graphquery.Options{})
		if err != nil {
			t.Fatalf("%s AS OF %s: %v", text, at, err)
		}
		return strings.TrimSpace(rows(t, res))
	}
	pos := func(name string) string { return fmt.Sprint(byName[name].pos) }
	tests := []struct {
		name, at, query, want string
	}{
		{"sensor in room1 before the move", pos("patched"), "SELECT R.$targetId FROM RELATIONSHIPS R WHERE R.$relationshipId = 'hs1'", `{"$targetId":"s1"}`},
		{"sensor source before the move", pos("patched"), "SELECT R.$sourceId FROM RELATIONSHIPS R WHERE R.$relationshipId = 'hs1'", `{"$sourceId":"room1"}`},
		{"sensor source after the move", pos("moved"), "SELECT R.$sourceId FROM RELATIONSHIPS R WHERE R.$relationshipId = 'hs1'", `{"$sourceId":"room2"}`},
		{"deleted twin existed", pos("gone-created"), "SELECT T.$dtId FROM DIGITALTWINS T WHERE T.$dtId = 'gone'", `{"$dtId":"gone"}`},
		{"deleted twin gone", pos("deleted"), "SELECT T.$dtId FROM DIGITALTWINS T WHERE T.$dtId = 'gone'", ``},
		{"temperature then", pos("patched"), "SELECT T.temperature FROM DIGITALTWINS T WHERE T.$dtId = 'room1'", `{"temperature":23}`},
		{"temperature before", pos("built"), "SELECT T.temperature FROM DIGITALTWINS T WHERE T.$dtId = 'room1'", `{"temperature":21.5}`},
		{"model v2 unknown before", pos("deleted"), "SELECT COUNT() FROM DIGITALTWINS WHERE IS_OF_MODEL('dtmi:test:Room;2')", `{"COUNT":0}`},
		{"model v2 in force after", pos("end"), "SELECT COUNT() FROM DIGITALTWINS WHERE IS_OF_MODEL('dtmi:test:Room;2')", `{"COUNT":2}`},
		{"before anything", "'2026-01-01T00:00:00Z'", "SELECT COUNT() FROM DIGITALTWINS", `{"COUNT":0}`},
		{"by time", "'" + byName["built"].tm.Format(time.RFC3339) + "'", "SELECT COUNT() FROM DIGITALTWINS", `{"COUNT":4}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := q(tc.at, tc.query); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	// Models in force: v2 is not in the registry before its upload, and
	// Floor is decommissioned only after.
	before, err := tt.AsOf(ctx, timetravel.At{Position: byName["deleted"].pos})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := before.Models().Get("dtmi:test:Room;2"); ok {
		t.Fatalf("Room;2 known before its upload")
	}
	if m, _ := before.Model("dtmi:test:Floor;1"); m == nil || m.Decommissioned {
		t.Fatalf("Floor;1 at %d: %+v", before.Position(), m)
	}
	if _, err := tt.AsOf(ctx, timetravel.At{Position: byName["end"].pos + 1}); err == nil {
		t.Fatalf("AsOf beyond the head: no error")
	}
}

// TestQueryPaging pages an AS OF query while the cache cannot hold its
// view: each page rebuilds it, and the pages neither skip nor repeat.
func TestQueryPaging(t *testing.T) {
	l := memlog.New(memlog.Options{Now: newClock().Now})
	e := newEnv(t, l, twingraph.New(twingraph.Options{}))
	_, err := e.svc.AddModels(e.ctx, "a", loadModels(t))
	e.must(err)
	for i := range 10 {
		e.put(fmt.Sprintf("s%02d", i), sensorBody)
	}
	p := e.mark("ten")
	for i := 10; i < 20; i++ {
		e.put(fmt.Sprintf("s%02d", i), sensorBody)
	}
	tt, err := timetravel.New(l, e.g, timetravel.Options{CacheEntries: 1})
	e.must(err)
	ctx := context.Background()
	var ids []string
	req := graphquery.Request{Query: "SELECT T.$dtId FROM DIGITALTWINS T", PageSize: 3}
	for {
		res, err := tt.Query(ctx, req, timetravel.At{Position: p.pos}, graphquery.Options{})
		e.must(err)
		for _, r := range res.Rows {
			ids = append(ids, string(r))
		}
		if res.ContinuationToken == "" {
			break
		}
		if !timetravel.TokenAsOf(res.ContinuationToken) {
			t.Fatalf("token does not carry AS OF")
		}
		// Evict the view: another position takes the one cache entry.
		_, err = tt.AsOf(ctx, timetravel.At{Position: 3})
		e.must(err)
		req = graphquery.Request{ContinuationToken: res.ContinuationToken, PageSize: 3}
	}
	if len(ids) != 10 {
		t.Fatalf("got %d rows %v, want 10", len(ids), ids)
	}
}

// TestHistory lists a twin's changes with their patches, actors and
// bounds.
func TestHistory(t *testing.T) {
	l := memlog.New(memlog.Options{Now: newClock().Now})
	e := newEnv(t, l, twingraph.New(twingraph.Options{}))
	pts := scenario(e)
	tt, err := timetravel.New(l, e.g, timetravel.Options{})
	e.must(err)
	ctx := context.Background()
	all, next, err := tt.History(ctx, timetravel.HistoryRequest{Twin: "room1"})
	e.must(err)
	if next != 0 {
		t.Fatalf("next=%d, want 0", next)
	}
	var got []string
	for _, c := range all {
		s := c.Type + " " + c.Actor
		if c.Patch != nil {
			s += " " + string(c.Patch)
		}
		got = append(got, s)
	}
	want := []string{
		"twin.created user:alice",
		"relationship.linked user:alice",
		"relationship.created user:alice",
		`twin.patched user:bob [{"op":"replace","path":"/temperature","value":23}]`,
		"relationship.deleted user:alice",
		`twin.patched user:bob [{"op":"replace","path":"/temperature","value":19.5},{"op":"add","path":"/tags","value":{"k":"v"}}]`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i, c := range all {
		if c.EventID != fmt.Sprint(c.Position) || c.Time == "" || (i > 0 && c.Position <= all[i-1].Position) {
			t.Fatalf("change %d: %+v", i, c)
		}
	}
	if !strings.Contains(string(all[0].Body), `"temperature":21.5`) {
		t.Fatalf("created body %s", all[0].Body)
	}

	// Bounds by time and position, and paging.
	var patched point
	for _, p := range pts {
		if p.name == "patched" {
			patched = p
		}
	}
	part, _, err := tt.History(ctx, timetravel.HistoryRequest{Twin: "room1", To: timetravel.At{Time: patched.tm}})
	e.must(err)
	if len(part) != 4 {
		t.Fatalf("to=%s: %d changes, want 4", patched.tm, len(part))
	}
	part, _, err = tt.History(ctx, timetravel.HistoryRequest{Twin: "room1", From: timetravel.At{Position: all[3].Position}})
	e.must(err)
	if len(part) != 3 || part[0].Position != all[3].Position {
		t.Fatalf("from=%d: %+v", all[3].Position, part)
	}
	var paged []timetravel.Change
	after := uint64(0)
	for {
		page, next, err := tt.History(ctx, timetravel.HistoryRequest{Twin: "room1", After: after, Max: 4})
		e.must(err)
		paged = append(paged, page...)
		if next == 0 {
			break
		}
		after = next
	}
	if len(paged) != len(all) {
		t.Fatalf("paged %d changes, want %d", len(paged), len(all))
	}
	// A deleted twin keeps its history; an unknown one has none.
	gone, _, err := tt.History(ctx, timetravel.HistoryRequest{Twin: "gone"})
	if err != nil || len(gone) != 2 || gone[1].Type != twingraph.TypeTwinDeleted {
		t.Fatalf("gone: %+v %v", gone, err)
	}
	if _, _, err := tt.History(ctx, timetravel.HistoryRequest{Twin: "nobody"}); engine.AsError(err).Code != "DigitalTwinNotFound" {
		t.Fatalf("unknown twin: %v", err)
	}
}

// TestRestart writes through a file log with a live checkpointer, restarts
// from the live snapshot, changes more, and reads property values at
// points on both sides of the restart.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	open := func() *filelog.Log {
		l, err := filelog.Open(filepath.Join(dir, "log"), filelog.Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	ctx := context.Background()
	histDir, snapDir := filepath.Join(dir, "history"), filepath.Join(dir, "snapshots")

	l := open()
	e := newEnv(t, l, twingraph.New(twingraph.Options{}))
	cp, err := timetravel.NewCheckpointer(histDir, e.g, timetravel.CheckpointOptions{Every: 5})
	e.must(err)
	_, err = e.svc.AddModels(ctx, "a", loadModels(t))
	e.must(err)
	e.put("room1", roomBody)
	var before []point
	for i := range 12 {
		e.patch("room1", fmt.Sprintf(`[{"op":"replace","path":"/temperature","value":%d}]`, 10+i))
		before = append(before, e.mark(fmt.Sprint(10+i)))
		if _, err := cp.Maybe(); err != nil {
			t.Fatal(err)
		}
	}
	sn, err := twingraph.NewSnapshotter(snapDir, e.g, twingraph.SnapshotterOptions{})
	e.must(err)
	_, err = sn.Take()
	e.must(err)
	e.eng.Stop()
	e.must(l.Close())

	l = open()
	defer l.Close()
	head, err := l.Head(ctx)
	e.must(err)
	g, err := twingraph.LoadNewest(ctx, snapDir, head, twingraph.Options{}, nil)
	e.must(err)
	if g.Position() != head {
		t.Fatalf("restored at %d, head %d", g.Position(), head)
	}
	e = newEnv(t, l, g)
	var after []point
	for i := range 3 {
		e.patch("room1", fmt.Sprintf(`[{"op":"replace","path":"/temperature","value":%d}]`, 50+i))
		after = append(after, e.mark(fmt.Sprint(50+i)))
	}
	cps, _ := os.ReadDir(histDir)
	if len(cps) < 2 {
		t.Fatalf("%d history checkpoints, want at least 2", len(cps))
	}
	tt, err := timetravel.New(l, g, timetravel.Options{Dirs: []string{snapDir, histDir}})
	e.must(err)
	for _, p := range append(before, after...) {
		snap, err := tt.AsOf(ctx, timetravel.At{Time: p.tm})
		e.must(err)
		tw, ok := snap.Twin("room1")
		if !ok {
			t.Fatalf("%s: no room1", p.name)
		}
		if v, _ := tw.Prop("temperature"); v == nil || v.Value != p.name {
			t.Fatalf("at %s: temperature %+v, want %s", p.tm, v, p.name)
		}
	}
	hist, _, err := tt.History(ctx, timetravel.HistoryRequest{Twin: "room1"})
	e.must(err)
	if len(hist) != 1+12+3 {
		t.Fatalf("%d changes across the restart, want 16", len(hist))
	}
	if st := tt.Stats(); st.Loaded == 0 {
		t.Fatalf("no build loaded a checkpoint: %+v", st)
	}
}

// TestThinning keeps the checkpoint count bounded while new ones come.
func TestThinning(t *testing.T) {
	l := memlog.New(memlog.Options{})
	e := newEnv(t, l, twingraph.New(twingraph.Options{}))
	dir := t.TempDir()
	cp, err := timetravel.NewCheckpointer(dir, e.g, timetravel.CheckpointOptions{Every: 1, MaxFiles: 4})
	e.must(err)
	_, err = e.svc.AddModels(e.ctx, "a", loadModels(t))
	e.must(err)
	for i := range 20 {
		e.put(fmt.Sprintf("s%d", i), sensorBody)
		if _, err := cp.Take(); err != nil {
			t.Fatal(err)
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) > 4 {
			t.Fatalf("%d files after %d checkpoints", len(ents), i+1)
		}
	}
	ents, _ := os.ReadDir(dir)
	last := ents[len(ents)-1].Name()
	if want := fmt.Sprintf("graph-%020d.snap", e.g.Position()); last != want {
		t.Fatalf("newest %s, want %s", last, want)
	}
}

func TestParseAt(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  bool
	}{
		{"42", "42", false},
		{"2026-11-24T09:26:00Z", "2026-11-24T09:26:00Z", false},
		{"2026-11-24T10:26:00+01:00", "2026-11-24T09:26:00Z", false},
		{"0", "", true},
		{"yesterday", "", true},
		{"", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			a, err := timetravel.ParseAt("asOf", tc.in)
			if (err != nil) != tc.err || (err == nil && a.String() != tc.want) {
				t.Fatalf("ParseAt(%q) = %v, %v; want %s err=%v", tc.in, a, err, tc.want, tc.err)
			}
		})
	}
}

// TestCheckpointSpacing checks that checkpoints are at least as many
// events apart as the graph has twins, whatever Every says.
func TestCheckpointSpacing(t *testing.T) {
	l := memlog.New(memlog.Options{})
	e := newEnv(t, l, twingraph.New(twingraph.Options{}))
	cp, err := timetravel.NewCheckpointer(t.TempDir(), e.g, timetravel.CheckpointOptions{Every: 2})
	e.must(err)
	_, err = e.svc.AddModels(e.ctx, "a", loadModels(t))
	e.must(err)
	for i := range 10 {
		e.put(fmt.Sprintf("s%d", i), sensorBody)
	}
	wrote, err := cp.Maybe()
	if err != nil || !wrote {
		t.Fatalf("first checkpoint: %v %v", wrote, err)
	}
	at := e.g.Position()
	for e.g.Position() < at+10 {
		if wrote, err := cp.Maybe(); err != nil || wrote {
			t.Fatalf("a checkpoint %d events after the last, with 10 twins: %v %v", e.g.Position()-at, wrote, err)
		}
		e.put(fmt.Sprintf("s%d", e.g.Position()%10), sensorBody)
	}
	if wrote, err := cp.Maybe(); err != nil || !wrote {
		t.Fatalf("no checkpoint %d events after the last: %v %v", e.g.Position()-at, wrote, err)
	}
}

// TestFoldedBuilds checks builds whose log after the checkpoint is folded
// into the checkpoint's load (patches of root properties and telemetry)
// against a replay from scratch, at every position of a history, beside
// builds whose log after the checkpoint has events that do not fold
// (a relationship, a component patch, a new twin).
func TestFoldedBuilds(t *testing.T) {
	ctx := context.Background()
	l := memlog.New(memlog.Options{Now: newClock().Now})
	var evs []event.Event
	add := func(e event.Event) { evs = append(evs, e) }
	newEvent := func(stream, typ string, p any) event.Event {
		e, err := twingraph.NewEvent(stream, typ, "a", p)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	ev, err := twingraph.NewEvent(twingraph.ModelsStream, twingraph.TypeModelUploaded, "a", twingraph.ModelsUploaded{Models: loadModels(t)})
	if err != nil {
		t.Fatal(err)
	}
	add(ev)
	const n = 12
	for i := range n {
		id := fmt.Sprintf("r%02d", i)
		add(newEvent(twingraph.TwinStream(id), twingraph.TypeTwinCreated, twingraph.TwinState{ID: id, Model: "dtmi:test:Room;1",
			SectionState: twingraph.SectionState{Properties: map[string]json.RawMessage{"temperature": json.RawMessage(`20`)}},
			Components:   map[string]twingraph.SectionState{"thermostat": {}}}))
	}
	for i := range 300 {
		id := fmt.Sprintf("r%02d", (i*7)%n)
		switch {
		case i == 130:
			add(newEvent(twingraph.TwinStream("r01"), twingraph.TypeRelationshipCreated, twingraph.RelationshipState{Source: "r01", ID: "a", Name: "adjacentTo", Target: "r02", Properties: json.RawMessage(`{}`)}))
		case i == 170:
			add(twingraph.NewPatchedEvent(twingraph.TwinStream(id), "a", &twingraph.TwinPatched{ID: id, Patch: json.RawMessage(`[]`),
				Components: map[string]twingraph.ComponentChange{"thermostat": {SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"setpoint": json.RawMessage(`21`)}}}}}))
		case i == 230:
			add(newEvent(twingraph.TwinStream("late"), twingraph.TypeTwinCreated, twingraph.TwinState{ID: "late", Model: "dtmi:test:Sensor;1"}))
		case i%9 == 0:
			add(newEvent(twingraph.TelemetryStream(id), twingraph.TypeTelemetry, twingraph.Telemetry{Twin: id, MessageID: fmt.Sprint(i), Body: json.RawMessage(`{"t":1}`)}))
		default:
			set := map[string]json.RawMessage{"temperature": json.RawMessage(fmt.Sprint(i))}
			if i%5 == 0 {
				set["capacity"] = json.RawMessage(fmt.Sprint(i % 3))
			}
			add(twingraph.NewPatchedEvent(twingraph.TwinStream(id), "a", &twingraph.TwinPatched{ID: id, Patch: json.RawMessage(`[]`),
				SectionChange: twingraph.SectionChange{Set: set, SourceTimes: map[string]string{"temperature": fmt.Sprintf("2026-11-24T10:%02d:00Z", i%60)}}}))
		}
	}
	for i := 0; i < len(evs); i += 10 {
		if _, err := l.Append(ctx, evs[i:min(i+10, len(evs))]); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	if _, err := timetravel.Backfill(ctx, l, dir, twingraph.Options{}, timetravel.CheckpointOptions{Every: 40}); err != nil {
		t.Fatal(err)
	}
	head, _ := l.Head(ctx)
	for _, batch := range []int{0, 7} {
		var folded uint64
		for pos := uint64(1); pos <= head; pos++ {
			tt, err := timetravel.New(l, nil, timetravel.Options{Dirs: []string{dir}, ReadBatch: batch})
			if err != nil {
				t.Fatal(err)
			}
			snap, err := tt.AsOf(ctx, timetravel.At{Position: pos})
			if err != nil {
				t.Fatalf("at %d: %v", pos, err)
			}
			if got, want := dump(snap), dump(replayed(t, l, pos)); got != want {
				t.Fatalf("batch %d, at %d (%+v):\n%s\nwant:\n%s", batch, pos, tt.Stats(), got, want)
			}
			folded += tt.Stats().Folded
		}
		if folded == 0 {
			t.Fatalf("batch %d: no build folded the log into a checkpoint", batch)
		}
	}
}

// TestCheckpointAdoptsSnapshots checks that a snapshot written by the
// node's snapshotter becomes a history checkpoint by a link once half the
// spacing has passed, that the history keeps it when the snapshotter's
// name goes, and that without one the checkpointer writes its own when due.
func TestCheckpointAdoptsSnapshots(t *testing.T) {
	l := memlog.New(memlog.Options{})
	e := newEnv(t, l, twingraph.New(twingraph.Options{}))
	snaps, hist := t.TempDir(), t.TempDir()
	cp, err := timetravel.NewCheckpointer(hist, e.g, timetravel.CheckpointOptions{Every: 20, Adopt: snaps})
	e.must(err)
	_, err = e.svc.AddModels(e.ctx, "a", loadModels(t))
	e.must(err)
	for e.g.Position() < 5 {
		e.put(fmt.Sprintf("s%d", e.g.Position()%4), sensorBody)
	}
	// Under half the spacing past the last checkpoint (none: 0): neither
	// adopted nor written.
	_, err = twingraph.WriteSnapshotFile(snaps, e.g.Snapshot())
	e.must(err)
	if wrote, err := cp.Maybe(); err != nil || wrote {
		t.Fatalf("at %d: checkpoint %v, %v", e.g.Position(), wrote, err)
	}
	for e.g.Position() < 12 {
		e.put(fmt.Sprintf("s%d", e.g.Position()%4), sensorBody)
	}
	at := e.g.Position()
	_, err = twingraph.WriteSnapshotFile(snaps, e.g.Snapshot())
	e.must(err)
	for range 3 {
		e.put("s0", sensorBody) // the graph moves on; the snapshot is adopted as it is
	}
	if wrote, err := cp.Maybe(); err != nil || !wrote {
		t.Fatalf("at %d with a snapshot at %d: checkpoint %v, %v", e.g.Position(), at, wrote, err)
	}
	a, err := os.Stat(twingraph.SnapshotPath(snaps, at))
	e.must(err)
	b, err := os.Stat(twingraph.SnapshotPath(hist, at))
	e.must(err)
	if !os.SameFile(a, b) {
		t.Fatalf("the checkpoint at %d is a copy, not a link of the snapshot", at)
	}
	e.must(os.Remove(twingraph.SnapshotPath(snaps, at)))
	if ps, err := twingraph.SnapshotPositions(hist); err != nil || len(ps) != 1 || ps[0] != at {
		t.Fatalf("history holds %v (%v), want [%d]", ps, err, at)
	}
	// No snapshot to adopt: the next checkpoint is written when due.
	for e.g.Position() < at+19 {
		if wrote, err := cp.Maybe(); err != nil || wrote {
			t.Fatalf("a checkpoint %d events after the last: %v, %v", e.g.Position()-at, wrote, err)
		}
		e.put(fmt.Sprintf("s%d", e.g.Position()%4), sensorBody)
	}
	e.put("s1", sensorBody)
	if wrote, err := cp.Maybe(); err != nil || !wrote {
		t.Fatalf("no checkpoint %d events after the last: %v, %v", e.g.Position()-at, wrote, err)
	}
	ps, err := twingraph.SnapshotPositions(hist)
	if err != nil || len(ps) != 2 || ps[1] != e.g.Position() {
		t.Fatalf("history holds %v (%v), want [%d %d]", ps, err, at, e.g.Position())
	}
	// A snapshot being written when a checkpoint falls due is waited for
	// (and adopted), but a temporary file left behind delays a checkpoint
	// by one spacing at most.
	last := e.g.Position()
	tmp := twingraph.SnapshotPath(snaps, last+1) + ".tmp"
	e.must(os.WriteFile(tmp, nil, 0o644))
	for e.g.Position() < last+20 {
		e.put(fmt.Sprintf("s%d", e.g.Position()%4), sensorBody)
	}
	if wrote, err := cp.Maybe(); err != nil || wrote {
		t.Fatalf("a checkpoint written while a snapshot is being written: %v, %v", wrote, err)
	}
	e.must(os.Remove(tmp))
	_, err = twingraph.WriteSnapshotFile(snaps, e.g.Snapshot())
	e.must(err)
	if wrote, err := cp.Maybe(); err != nil || !wrote {
		t.Fatalf("the finished snapshot at %d was not adopted: %v, %v", e.g.Position(), wrote, err)
	}
	last = e.g.Position()
	e.must(os.WriteFile(tmp, nil, 0o644))
	for e.g.Position() < last+40 {
		e.put(fmt.Sprintf("s%d", e.g.Position()%4), sensorBody)
	}
	if wrote, err := cp.Maybe(); err != nil || !wrote {
		t.Fatalf("a stale temporary file held the checkpoint back %d events: %v, %v", e.g.Position()-last, wrote, err)
	}
	if ps, _ := twingraph.SnapshotPositions(hist); ps[len(ps)-1] != e.g.Position() {
		t.Fatalf("newest checkpoint %d, want %d", ps[len(ps)-1], e.g.Position())
	}
}
