package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/handlers"
)

// TestRollAndDisable rolls a handler to new versions and disables it in
// between: every event is handled by the version deployed before it,
// events while it is disabled by none, and none is lost at a roll.
func TestRollAndDisable(t *testing.T) {
	n := newMemNode(t, handlers.Options{})
	ctx := context.Background()
	b := building{floors: 1, rooms: 1}
	b.create(t, n.svc)
	room := roomID(0, 0)
	deploy := func(version string) {
		t.Helper()
		n.deploy(t, "alert", handlers.Manifest{Name: "alert", Version: version,
			Triggers: []handlers.Trigger{{Events: []string{"property"}, Models: []string{roomModel}, Properties: []string{"co2"}}},
			Config:   json.RawMessage(`{"property":"co2","above":1000,"flag":"alert"}`)})
	}
	// patch sets co2 and waits until the handler has handled it, so each
	// patch is its own batch and flips the alert flag.
	patch := func(co2 int) {
		t.Helper()
		if _, err := n.svc.PatchTwin(ctx, "test", room, []byte(fmt.Sprintf(`[{"op":"add","path":"/co2","value":%d}]`, co2)), twins.Cond{}); err != nil {
			t.Fatal(err)
		}
		n.settle(t)
	}
	state := func(want string) {
		t.Helper()
		if st, err := n.mgr.Get(ctx, "alert"); err != nil || st.State != want {
			t.Fatalf("state %v (%v), want %s", st, err, want)
		}
	}

	deploy("1")
	patch(1500) // handled by 1
	deploy("2")
	patch(500) // handled by 2
	n.mgr.Disable(ctx, "test", "alert")
	state("disabled")
	patch(1500) // not handled
	deploy("3")
	state("active")
	patch(1600) // handled by 3 (the flag is still false)

	// Which version answered which patch, from the log.
	var patches []uint64
	handledBy := map[uint64]string{}
	evs, err := n.log.Read(ctx, 1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		switch {
		case e.Stream == "twin/"+room && e.Type == "twin.patched" && e.Actor == "test":
			patches = append(patches, e.Position)
		case strings.HasPrefix(e.Actor, "handler:alert@"):
			version, _, _ := strings.Cut(strings.TrimPrefix(e.Actor, "handler:alert@"), ";")
			_, outputs := handlers.Outputs(e.Actor)
			for _, o := range outputs {
				c, _, _ := strings.Cut(o, ".")
				pos, _ := strconv.ParseUint(c, 10, 64)
				if old, ok := handledBy[pos]; ok {
					t.Errorf("patch at %d handled by %s and %s", pos, old, version)
				}
				handledBy[pos] = version
			}
		}
	}
	if len(patches) != 4 {
		t.Fatalf("%d co2 patches in the log, want 4", len(patches))
	}
	for i, want := range []string{"1", "2", "", "3"} {
		if got := handledBy[patches[i]]; got != want {
			t.Errorf("patch %d (position %d) handled by version %q, want %q", i, patches[i], got, want)
		}
	}
	if got := prop(t, n.svc, room, "alert"); got != true {
		t.Errorf("alert = %v, want true", got)
	}
}
