package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/handlers"
)

// Models of the test building: the standard benchmark graph's shape, with
// the properties the example handlers compute.
const (
	buildingModel = "dtmi:twinlog:test:Building;1"
	floorModel    = "dtmi:twinlog:test:Floor;1"
	roomModel     = "dtmi:twinlog:test:Room;1"
	sensorModel   = "dtmi:twinlog:test:Sensor;1"
)

func models() []json.RawMessage {
	prop := func(name, schema string) string {
		return `{"@type":"Property","name":"` + name + `","schema":"` + schema + `","writable":true}`
	}
	rel := func(name, target string) string {
		return `{"@type":"Relationship","name":"` + name + `","target":"` + target + `"}`
	}
	itf := func(id string, contents ...string) json.RawMessage {
		return json.RawMessage(`{"@context":"dtmi:dtdl:context;3","@id":"` + id + `","@type":"Interface","contents":[` + strings.Join(contents, ",") + `]}`)
	}
	return []json.RawMessage{
		itf(buildingModel, prop("name", "string"), prop("comfort", "double"), prop("score", "double"), rel("contains", floorModel)),
		itf(floorModel, prop("name", "string"), prop("comfort", "double"), prop("score", "double"), rel("contains", roomModel)),
		itf(roomModel, prop("name", "string"), prop("temperature", "double"), prop("humidity", "double"), prop("co2", "double"),
			prop("noise", "double"), prop("comfort", "double"), prop("alert", "boolean"), rel("hasSensor", sensorModel)),
		itf(sensorModel, prop("kind", "string"), `{"@type":"Telemetry","name":"reading","schema":"double"}`, rel("isLocatedIn", roomModel)),
	}
}

var kinds = []string{"temperature", "humidity", "co2", "noise"}

type building struct {
	floors, rooms int
}

func roomID(f, r int) string { return fmt.Sprintf("room-%d-%d", f, r) }
func floorID(f int) string   { return fmt.Sprintf("floor-%d", f) }
func sensorID(f, r, k int) string {
	return fmt.Sprintf("sensor-%d-%d-%s", f, r, kinds[k])
}

// create makes the models and twins of b.
func (b building) create(t testing.TB, svc *twins.Service) {
	t.Helper()
	ctx := context.Background()
	if _, err := svc.AddModels(ctx, "test", models()); err != nil {
		t.Fatal(err)
	}
	put := func(id, model, props string) {
		t.Helper()
		body := `{"$metadata":{"$model":"` + model + `"}` + props + `}`
		if _, _, err := svc.PutTwin(ctx, "test", id, []byte(body), twins.Cond{}); err != nil {
			t.Fatalf("put %s: %v", id, err)
		}
	}
	rel := func(src, id, name, tgt string) {
		t.Helper()
		body := `{"$targetId":"` + tgt + `","$relationshipName":"` + name + `"}`
		if _, _, err := svc.PutRelationship(ctx, "test", src, id, []byte(body), twins.Cond{}); err != nil {
			t.Fatalf("relate %s: %v", id, err)
		}
	}
	put("building", buildingModel, `,"name":"B"`)
	for f := range b.floors {
		put(floorID(f), floorModel, `,"name":"F"`)
		rel("building", "contains-"+floorID(f), "contains", floorID(f))
		for r := range b.rooms {
			put(roomID(f, r), roomModel, `,"name":"R"`)
			rel(floorID(f), "contains-"+roomID(f, r), "contains", roomID(f, r))
			for k, kind := range kinds {
				put(sensorID(f, r, k), sensorModel, `,"kind":"`+kind+`"`)
				rel(sensorID(f, r, k), "in", "isLocatedIn", roomID(f, r))
			}
		}
	}
}

// reading is the value sensor k of room (f, r) sends in round i.
func reading(f, r, k, i int) float64 {
	base := []float64{21, 45, 700, 38}[k]
	spread := []float64{4, 20, 600, 10}[k]
	x := float64((f*131+r*31+k*7+i*17)%100) / 100
	return math.Round((base+spread*(x-0.5))*10) / 10
}

func comfort(t, h, co2, n float64) float64 {
	c := 100 - math.Abs(t-22)*5 - math.Max(0, (co2-600)/10) - math.Abs(h-45)*0.5 - math.Max(0, n-40)
	c = math.Min(100, math.Max(0, c))
	return math.Round(c*10) / 10
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// send sends round i of telemetry from every sensor.
func (b building) send(t testing.TB, svc *twins.Service, i int) {
	t.Helper()
	for f := range b.floors {
		for r := range b.rooms {
			for k := range kinds {
				body := fmt.Sprintf(`{"reading":%v}`, reading(f, r, k, i))
				if err := svc.SendTelemetry(context.Background(), "device", sensorID(f, r, k), "", fmt.Sprintf("m%d", i), "", []byte(body)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func prop(t testing.TB, svc *twins.Service, id, name string) any {
	t.Helper()
	b, _, err := svc.GetTwin(context.Background(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m[name]
}

// check compares every computed property with its expected value after
// round last.
func (b building) check(t testing.TB, svc *twins.Service, last int) {
	t.Helper()
	var floorSum float64
	for f := range b.floors {
		var roomSum float64
		for r := range b.rooms {
			v := func(k int) float64 { return reading(f, r, k, last) }
			want := comfort(v(0), v(1), v(2), v(3))
			roomSum += want
			if got := prop(t, svc, roomID(f, r), "comfort"); got != want {
				t.Errorf("%s comfort = %v, want %v", roomID(f, r), got, want)
			}
			if got, want := prop(t, svc, roomID(f, r), "alert"), v(2) > 1000; got != want {
				t.Errorf("%s alert = %v, want %v (co2 %v)", roomID(f, r), got, want, v(2))
			}
		}
		want := round2(roomSum / float64(b.rooms))
		floorSum += want
		if got := prop(t, svc, floorID(f), "comfort"); got != want {
			t.Errorf("%s comfort = %v, want %v", floorID(f), got, want)
		}
	}
	if got, want := prop(t, svc, "building", "comfort"), round2(floorSum/float64(b.floors)); got != want {
		t.Errorf("building comfort = %v, want %v", got, want)
	}
}

func deployExamples(t testing.TB, n *node) {
	n.deploy(t, "comfort", handlers.Manifest{Name: "comfort", Version: "1",
		Triggers: []handlers.Trigger{{Events: []string{"telemetry"}, Models: []string{sensorModel}}}})
	n.deploy(t, "average", handlers.Manifest{Name: "average", Version: "1",
		Triggers: []handlers.Trigger{{Events: []string{"twin.patched"}, Models: []string{roomModel, floorModel}, Properties: []string{"comfort"}}}})
	n.deploy(t, "alert", handlers.Manifest{Name: "alert", Version: "1",
		Triggers: []handlers.Trigger{{Events: []string{"property"}, Models: []string{roomModel}, Properties: []string{"co2"}}},
		Config:   json.RawMessage(`{"property":"co2","above":1000,"flag":"alert"}`)})
}

func TestExamplesEndToEnd(t *testing.T) {
	n := newMemNode(t, handlers.Options{})
	b := building{floors: 2, rooms: 3}
	b.create(t, n.svc)
	deployExamples(t, n)
	for i := range 3 {
		b.send(t, n.svc, i)
	}
	n.settle(t)
	b.check(t, n.svc, 2)
	for _, st := range n.mgr.List(context.Background()) {
		if st.Stats.Failures+st.Stats.OutputErrors+st.Stats.CascadeStops > 0 {
			t.Errorf("%s: %+v %+v", st.Name, st.Stats, st.Reports)
		}
	}
}

// TestRestartMidStream stops the node while handlers are busy, restarts it
// on the same file log and checks that the results are exact and no output
// was written twice: with telemetry events, and with telemetry batches
// larger than the handler's jobs.
func TestRestartMidStream(t *testing.T) {
	for _, batches := range []bool{false, true} {
		t.Run(fmt.Sprintf("batches=%v", batches), func(t *testing.T) {
			dir := t.TempDir()
			n := openFileNode(t, dir)
			b := building{floors: 2, rooms: 3}
			b.create(t, n.svc)
			deployExamples(t, n)
			send := func(i int) { b.send(t, n.svc, i) }
			if batches {
				// Jobs of 8 events: a round's batch (24 points) spans
				// three, each holding whole rooms.
				n.deploy(t, "comfort", handlers.Manifest{Name: "comfort", Version: "2", Limits: handlers.Limits{MaxBatch: 8},
					Triggers: []handlers.Trigger{{Events: []string{"telemetry"}, Models: []string{sensorModel}}}})
				send = func(i int) { b.sendBatch(t, n, i) }
			}
			send(0)
			send(1)
			n.close(t, true) // mid-stream: the handlers have not caught up

			n = openFileNode(t, dir)
			defer n.close(t, true)
			send(2)
			send(3)
			n.settle(t)
			b.check(t, n.svc, 3)
			outputsOnce(t, n)
		})
	}
}

// outputsOnce checks that every handler output (cause, seq) is in the log
// once, and that there are some.
func outputsOnce(t *testing.T, n *node) {
	t.Helper()
	seen := map[string]int{}
	n.eachEvent(t, func(e *event.Event) {
		name, outputs := handlers.Outputs(e.Actor)
		for _, o := range outputs {
			seen[name+" "+o]++
		}
	})
	for k, c := range seen {
		if c > 1 {
			t.Errorf("output %s written %d times", k, c)
		}
	}
	if len(seen) == 0 {
		t.Fatal("no handler outputs in the log")
	}
}
