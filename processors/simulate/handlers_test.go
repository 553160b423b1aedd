package simulate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/handlers"
	"github.com/twinlog/twinlog/processors/simulate"
	"github.com/twinlog/twinlog/projections/timetravel"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/wasm-handlers/handlertest"
)

var modules struct {
	once  sync.Once
	bytes map[string][]byte
	err   error
}

// module returns a handler module built for the tests: an example
// (comfort, average, trivial), or warmcomfort (testdata), the comfort
// example scoring 24 °C as ideal.
func module(t testing.TB, name string) []byte {
	t.Helper()
	modules.once.Do(func() {
		dir, err := os.MkdirTemp("", "simulate-wasm")
		if err != nil {
			modules.err = err
			return
		}
		defer os.RemoveAll(dir)
		files, err := handlertest.Build(dir, map[string]string{
			"comfort":     handlertest.Examples["comfort"],
			"average":     handlertest.Examples["average"],
			"trivial":     handlertest.Examples["trivial"],
			"warmcomfort": handlertest.Module + "/processors/simulate/testdata/warmcomfort",
		})
		if err != nil {
			modules.err = err
			return
		}
		modules.bytes = map[string][]byte{}
		for n, f := range files {
			if modules.bytes[n], err = os.ReadFile(f); err != nil {
				modules.err = err
				return
			}
		}
	})
	if modules.err != nil {
		t.Fatal(modules.err)
	}
	return modules.bytes[name]
}

const (
	floors        = 2
	roomsPerFloor = 3
)

// building is a main log with a building of floors × rooms, the comfort
// and average example handlers deployed, and a simulator over it.
type building struct {
	world
	eng *engine.Engine
	mgr *handlers.Manager
}

func buildingModels() []json.RawMessage {
	prop := func(name string) string {
		return `{"@type":"Property","name":"` + name + `","schema":"double","writable":true}`
	}
	itf := func(id, contains string, props ...string) json.RawMessage {
		c := props
		if contains != "" {
			c = append(c, `{"@type":"Relationship","name":"contains","target":"`+contains+`"}`)
		}
		return json.RawMessage(`{"@context":"dtmi:dtdl:context;3","@id":"` + id + `","@type":"Interface","contents":[` + strings.Join(c, ",") + `]}`)
	}
	return []json.RawMessage{
		itf("dtmi:t:Building;1", "dtmi:t:Floor;1", prop("comfort")),
		itf("dtmi:t:Floor;1", "dtmi:t:Room;1", prop("comfort")),
		itf("dtmi:t:Room;1", "", prop("temperature"), prop("humidity"), prop("co2"), prop("noise"), prop("comfort")),
	}
}

func roomID(f, r int) string { return fmt.Sprintf("room-%d-%d", f, r) }

func newBuilding(t *testing.T) *building {
	t.Helper()
	ctx := context.Background()
	b := &building{}
	w := &b.world
	cache := t.TempDir()
	b.eng = w.open(t, simulate.Options{HandlerCacheDir: cache})
	var err error
	if _, err := w.twins.AddModels(ctx, "test", buildingModels()); err != nil {
		t.Fatal(err)
	}
	put := func(id, model string) {
		if _, _, err := w.twins.PutTwin(ctx, "test", id, []byte(`{"$metadata":{"$model":"`+model+`"}}`), twins.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	contains := func(src, dst string) {
		body := `{"$targetId":"` + dst + `","$relationshipName":"contains"}`
		if _, _, err := w.twins.PutRelationship(ctx, "test", src, "contains-"+dst, []byte(body), twins.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	put("building", "dtmi:t:Building;1")
	for f := range floors {
		fid := fmt.Sprintf("floor-%d", f)
		put(fid, "dtmi:t:Floor;1")
		contains("building", fid)
		for r := range roomsPerFloor {
			put(roomID(f, r), "dtmi:t:Room;1")
			contains(fid, roomID(f, r))
		}
	}
	if b.mgr, err = handlers.New(b.eng, w.twins, handlers.Options{CacheDir: cache, CheckpointInterval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := b.mgr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.mgr.Close() })
	if _, err := b.mgr.Deploy(ctx, "test", comfortManifest("comfort", "1"), module(t, "comfort")); err != nil {
		t.Fatal(err)
	}
	average := handlers.Manifest{Name: "average", Version: "1", Triggers: []handlers.Trigger{{Events: []string{"twin.patched"},
		Models: []string{"dtmi:t:Room;1", "dtmi:t:Floor;1"}, Properties: []string{"comfort"}}}}
	if _, err := b.mgr.Deploy(ctx, "test", average, module(t, "average")); err != nil {
		t.Fatal(err)
	}
	return b
}

func comfortManifest(name, version string) handlers.Manifest {
	return handlers.Manifest{Name: name, Version: version,
		Triggers: []handlers.Trigger{{Events: []string{"telemetry"}, Models: []string{"dtmi:t:Room;1"}}}}
}

// settle waits until the main handlers have handled everything, cascades
// included.
func (b *building) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		head, _ := b.log.Head(ctx)
		if err := b.eng.WaitApplied(ctx, head); err != nil {
			t.Fatal(err)
		}
		if err := b.mgr.WaitIdle(ctx, head); err != nil {
			t.Fatal(err)
		}
		if after, _ := b.log.Head(ctx); after == head {
			return
		}
	}
}

// reading is room (f, r)'s telemetry at step i of the day.
type reading struct{ temperature, humidity, co2, noise float64 }

func readingAt(f, r, i int) reading {
	k := f*roomsPerFloor + r
	return reading{
		temperature: 19 + float64((k*7+i)%8),
		humidity:    38 + float64((k*5+i*3)%15),
		co2:         450 + float64((k*37+i*11)%500),
		noise:       33 + float64((k+i)%12),
	}
}

// comfort is the comfort example's score with ideal temperature ideal.
func (x reading) comfort(ideal float64) float64 {
	c := 100 - math.Abs(x.temperature-ideal)*5 - math.Max(0, (x.co2-600)/10) - math.Abs(x.humidity-45)*0.5 - math.Max(0, x.noise-40)
	return math.Round(math.Min(100, math.Max(0, c))*10) / 10
}

// floorAverages returns the floors' comfort in g.
func floorAverages(t *testing.T, g *twingraph.Graph) [floors]float64 {
	t.Helper()
	var out [floors]float64
	snap := g.Snapshot()
	for f := range floors {
		tw, ok := snap.Twin(fmt.Sprintf("floor-%d", f))
		if !ok {
			t.Fatalf("no floor-%d", f)
		}
		p, ok := tw.Prop("comfort")
		if !ok {
			t.Fatalf("floor-%d has no comfort", f)
		}
		if err := json.Unmarshal([]byte(p.Value), &out[f]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestReplayDayWithChangedHandler records a day of telemetry for a
// building with the comfort and average handlers deployed, then replays it
// into a branch at full speed with the deployed handlers but a changed
// comfort handler (24 °C ideal instead of 22 °C). The branch's floor
// averages are those the changed handler implies for the last readings;
// the main graph's are those of the deployed one, and it is unchanged.
func TestReplayDayWithChangedHandler(t *testing.T) {
	b := newBuilding(t)
	ctx := context.Background()
	b.settle(t)
	fork := b.graph.Snapshot().Position()
	const steps = 24 * 6 // every 10 minutes
	for i := range steps {
		b.tick(10 * time.Minute)
		for f := range floors {
			for r := range roomsPerFloor {
				x := readingAt(f, r, i)
				body := fmt.Sprintf(`{"temperature":%v,"humidity":%v,"co2":%v,"noise":%v}`, x.temperature, x.humidity, x.co2, x.noise)
				if err := b.twins.SendTelemetry(ctx, "device", roomID(f, r), "", fmt.Sprintf("m-%d-%d-%d", f, r, i), "", []byte(body)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	b.settle(t)

	want := func(ideal float64) [floors]float64 {
		var out [floors]float64
		for f := range floors {
			sum := 0.0
			for r := range roomsPerFloor {
				sum += readingAt(f, r, steps-1).comfort(ideal)
			}
			out[f] = math.Round(sum/roomsPerFloor*100) / 100
		}
		return out
	}
	mainFloors := floorAverages(t, b.graph)
	if mainFloors != want(22) {
		t.Fatalf("main floor comfort %v, want %v (the deployed handler)", mainFloors, want(22))
	}
	before := b.graph.Snapshot()
	mainHead, _ := b.log.Head(ctx)

	br, err := b.sim.Create(ctx, simulate.Request{
		At:               timetravel.At{Position: fork},
		Window:           &simulate.Window{},
		DeployedHandlers: true,
		Handlers:         []simulate.Handler{{Manifest: ptr(comfortManifest("comfort", "warm")), Module: module(t, "warmcomfort")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := br.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	st := br.Status()
	if st.Fed != steps*floors*roomsPerFloor || len(st.Handlers) != 2 {
		t.Fatalf("status %+v: want %d events fed and 2 handlers", st, steps*floors*roomsPerFloor)
	}
	for _, h := range st.Handlers {
		if h.Name == "comfort" && h.Version != "warm" {
			t.Fatalf("branch runs comfort version %s, want warm", h.Version)
		}
	}
	got := floorAverages(t, br.Graph())
	if got != want(24) {
		t.Fatalf("branch floor comfort %v, want %v (the changed handler)", got, want(24))
	}
	if got == mainFloors {
		t.Fatalf("branch floor comfort %v equals the main graph's: the changed handler changed nothing", got)
	}
	for f := range floors {
		for r := range roomsPerFloor {
			tw, _ := br.Graph().Snapshot().Twin(roomID(f, r))
			p, _ := tw.Prop("comfort")
			if wantC := fmt.Sprint(readingAt(f, r, steps-1).comfort(24)); p.Value != wantC {
				t.Fatalf("branch %s comfort %s, want %s", roomID(f, r), p.Value, wantC)
			}
		}
	}

	if h, _ := b.log.Head(ctx); h != mainHead {
		t.Fatalf("main head %d, want %d: the branch wrote to the main log", h, mainHead)
	}
	twingraph.Diff(before, b.graph.Snapshot(), twingraph.DiffOptions{Exact: true}, func(d twingraph.Difference) bool {
		t.Fatalf("main graph changed: %s", d)
		return false
	})
}

func ptr[T any](v T) *T { return &v }

func TestHandlerRequestErrors(t *testing.T) {
	b := newBuilding(t)
	ctx := context.Background()
	head, _ := b.log.Head(ctx)
	for _, tc := range []struct {
		name string
		h    simulate.Handler
		want string
	}{
		{"unknown", simulate.Handler{Name: "nope"}, "HandlerNotFound"},
		{"unknown version", simulate.Handler{Name: "comfort", Version: "9"}, "HandlerNotFound"},
		{"nothing", simulate.Handler{}, "InvalidArgument"},
		{"manifest without module", simulate.Handler{Manifest: ptr(comfortManifest("c", "1"))}, "InvalidArgument"},
		{"both", simulate.Handler{Name: "comfort", Manifest: ptr(comfortManifest("c", "1")), Module: []byte{0}}, "InvalidArgument"},
		{"bad manifest", simulate.Handler{Manifest: &handlers.Manifest{}, Module: []byte{0}}, ""},
		{"bad module", simulate.Handler{Manifest: ptr(comfortManifest("c", "1")), Module: []byte("not wasm")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.sim.Create(ctx, simulate.Request{Handlers: []simulate.Handler{tc.h}})
			var ee *engine.Error
			if err == nil || (tc.want != "" && (!errors.As(err, &ee) || ee.Code != tc.want)) {
				t.Fatalf("err %v, want %s", err, tc.want)
			}
			if n := len(b.sim.List()); n != 0 {
				t.Fatalf("%d branches kept after a failed create", n)
			}
		})
	}
	if h, _ := b.log.Head(ctx); h != head {
		t.Fatalf("main head %d, want %d", h, head)
	}
	// The deployed version by name, and an older one by version.
	br, err := b.sim.Create(ctx, simulate.Request{Handlers: []simulate.Handler{{Name: "comfort"}, {Name: "average", Version: "1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if st := br.Status(); len(st.Handlers) != 2 {
		t.Fatalf("handlers %+v, want comfort and average", st.Handlers)
	}
}
