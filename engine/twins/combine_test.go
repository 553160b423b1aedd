package twins_test

import (
	"encoding/json"
	"strconv"
	"sync"
	"testing"

	"github.com/twinlog/twinlog/engine/twins"
)

// TestCombinerNoLostUpdates increments counters with read-modify-write
// patches guarded by If-Match from many goroutines at once. A caller's own
// decision, made against a snapshot a concurrent batch has since made stale,
// must not be appended: every increment that succeeds is kept, and the
// counters end at exactly the number of successes.
func TestCombinerNoLostUpdates(t *testing.T) {
	e := withModels(t)
	const twinsN, workers, each = 3, 12, 40
	for i := range twinsN {
		e.put("c"+strconv.Itoa(i), `{"$metadata":{"$model":"dtmi:test:Room;1"},"name":"c","temperature":0,"thermostat":{}}`)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < each; {
				id := "c" + strconv.Itoa((w+k)%twinsN)
				body, etag, err := e.svc.GetTwin(e.ctx, id)
				if err != nil {
					t.Error(err)
					return
				}
				var cur struct{ Temperature float64 }
				if err := json.Unmarshal(body, &cur); err != nil {
					t.Error(err)
					return
				}
				patch := `[{"op":"replace","path":"/temperature","value":` + strconv.Itoa(int(cur.Temperature)+1) + `}]`
				_, err = e.svc.PatchTwin(e.ctx, "test", id, []byte(patch), twins.Cond{IfMatch: etag})
				switch code(err) {
				case "":
					k++
				case "PreconditionFailed":
					// Another writer got there first: read again.
				default:
					t.Errorf("patch %s: %v", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := 0.0
	for i := range twinsN {
		total += e.twin("c" + strconv.Itoa(i))["temperature"].(float64)
	}
	if total != workers*each {
		t.Fatalf("counters sum to %v after %d successful increments", total, workers*each)
	}
}

// TestPatchKeepsNoBytes scribbles over each patch's bytes once PatchTwin or
// PatchComponent returns, as the HTTP API does when it recycles a body: the
// twin, and the same twin replayed from the log into a new graph, must
// hold what the patches said.
func TestPatchKeepsNoBytes(t *testing.T) {
	e := withModels(t)
	e.put("r1", roomBody)
	patches := []struct{ component, patch string }{
		{"", `[{"op":"replace","path":"/temperature","value":23.25}]`},
		{"", `[{"op":"add","path":"/name","value":"north"},{"op":"add","path":"/capacity","value":12}]`},
		{"", `[{"op":"add","path":"/tags","value":{"ab":"x/y"}},{"op":"add","path":"/tags/cd","value":"\u00e9 \"q\""}]`},
		{"", `[{"op":"add","path":"/info","value":{"floor":3,"label":"L3"}},{"op":"replace","path":"/info/label","value":"three"}]`},
		{"", `[{"op":"add","path":"/$metadata/temperature/sourceTime","value":"2026-01-02T03:04:05.5Z"}]`},
		{"thermostat", `[{"op":"add","path":"/setpoint","value":19.5},{"op":"add","path":"/mode","value":"heat"}]`},
	}
	for _, p := range patches {
		buf := []byte(p.patch)
		var err error
		if p.component == "" {
			_, err = e.svc.PatchTwin(e.ctx, "test", "r1", buf, twins.Cond{})
		} else {
			_, err = e.svc.PatchComponent(e.ctx, "test", "r1", p.component, buf, twins.Cond{})
		}
		if err != nil {
			t.Fatalf("%s: %v", p.patch, err)
		}
		for i := range buf {
			buf[i] = '#'
		}
	}
	want := `{"$dtId":"r1","capacity":12,"info":{"floor":3,"label":"three"},"name":"north","tags":{"ab":"x/y","cd":"é \"q\""},"temperature":23.25,"thermostat":{"mode":"heat","setpoint":19.5}}`
	check := func(what string, svc *twins.Service) {
		t.Helper()
		body, _, err := svc.GetTwin(e.ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "$etag")
		delete(m, "$metadata")
		if th, ok := m["thermostat"].(map[string]any); ok {
			delete(th, "$metadata")
		}
		got, _ := json.Marshal(m)
		if string(got) != want {
			t.Errorf("%s:\n got %s\nwant %s", what, got, want)
		}
	}
	check("live", e.svc)
	replay := newEnvOn(t, e.log)
	check("replayed", replay.svc)
}

// TestPatchTwins applies a group of patches: each stands on its own, and
// patches to one twin apply in order.
func TestPatchTwins(t *testing.T) {
	e := withModels(t)
	e.put("a", roomBody)
	etagB := e.put("b", roomBody)
	res := e.svc.PatchTwins(e.ctx, "test", []twins.Patch{
		{ID: "a", Patch: []byte(`[{"op":"replace","path":"/temperature","value":30}]`)},
		{ID: "a", Patch: []byte(`[{"op":"add","path":"/capacity","value":4}]`)},
		{ID: "missing", Patch: []byte(`[{"op":"add","path":"/capacity","value":4}]`)},
		{ID: "b", Patch: []byte(`[{"op":"replace","path":"/temperature","value":"warm"}]`)},
		{ID: "b", Patch: []byte(`not json`)},
		{ID: "b", Patch: []byte(`[{"op":"replace","path":"/temperature","value":31}]`), Cond: twins.Cond{IfMatch: etagB}},
		{ID: "b", Patch: []byte(`[{"op":"replace","path":"/temperature","value":32}]`), Cond: twins.Cond{IfMatch: etagB}},
		{ID: "b", Component: "thermostat", Patch: []byte(`[{"op":"add","path":"/setpoint","value":20}]`)},
	})
	want := []string{"", "", "DigitalTwinNotFound", "ValidationFailed", "JsonPatchInvalid", "", "PreconditionFailed", ""}
	for i, r := range res {
		if code(r.Err) != want[i] {
			t.Errorf("patch %d: %v, want %q", i, r.Err, want[i])
		}
		if (r.Err == nil) != (r.ETag != "") {
			t.Errorf("patch %d: ETag %q with error %v", i, r.ETag, r.Err)
		}
	}
	a, b := e.twin("a"), e.twin("b")
	if a["temperature"] != 30.0 || a["capacity"] != 4.0 || b["temperature"] != 31.0 || b["thermostat"].(map[string]any)["setpoint"] != 20.0 {
		t.Fatalf("a = %v\nb = %v", a, b)
	}
	if a["$etag"] != res[1].ETag || b["$etag"] != res[7].ETag {
		t.Errorf("ETags %v, %v; the last patches returned %q, %q", a["$etag"], b["$etag"], res[1].ETag, res[7].ETag)
	}
}

// TestPatchTwinsConcurrent runs groups, each patching its twins twice, and
// single patches at once: every twin ends at the value its writer last had
// acknowledged.
func TestPatchTwinsConcurrent(t *testing.T) {
	e := withModels(t)
	const groups, singles, per = 4, 4, 8
	for i := range (groups + singles) * per {
		e.put("t"+strconv.Itoa(i), roomBody)
	}
	var wg sync.WaitGroup
	last := make([]int, (groups+singles)*per)
	for g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 60; k += 2 {
				var ps []twins.Patch
				for j := range per {
					id := "t" + strconv.Itoa(g*per+j)
					for _, v := range []int{k, k + 1} {
						ps = append(ps, twins.Patch{ID: id, Patch: []byte(`[{"op":"replace","path":"/temperature","value":` + strconv.Itoa(v) + `}]`)})
					}
				}
				for i, r := range e.svc.PatchTwins(e.ctx, "test", ps) {
					if r.Err != nil {
						t.Errorf("group %d patch %d: %v", g, i, r.Err)
						return
					}
				}
				for j := range per {
					last[g*per+j] = k + 1
				}
			}
		}()
	}
	for s := range singles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 60 {
				n := (groups+s)*per + k%per
				if _, err := e.svc.PatchTwin(e.ctx, "test", "t"+strconv.Itoa(n), []byte(`[{"op":"replace","path":"/temperature","value":`+strconv.Itoa(k)+`}]`), twins.Cond{}); err != nil {
					t.Error(err)
					return
				}
				last[n] = k
			}
		}()
	}
	wg.Wait()
	for i, v := range last {
		if got := e.twin("t" + strconv.Itoa(i))["temperature"]; got != float64(v) {
			t.Errorf("t%d: temperature %v, last acknowledged %d", i, got, v)
		}
	}
}
