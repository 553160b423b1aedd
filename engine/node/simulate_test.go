package node_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/node"
	"github.com/twinlog/twinlog/wasm-handlers/handlertest"
)

// TestSimulationRunsDeployedHandler drives a node over HTTP: a handler
// deployed in the main graph also runs in a simulation branch (on the
// host the node shares between the two), acts on the branch's own events
// there, and leaves the main graph as it was; the node then closes
// cleanly, branch and handlers included.
func TestSimulationRunsDeployedHandler(t *testing.T) {
	files, err := handlertest.Build(t.TempDir(), map[string]string{"alert": handlertest.Examples["alert"]})
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(files["alert"])
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	n, stop := start(t, node.Config{DataDir: dir})
	defer stop()
	c, tok, url := http.DefaultClient, n.Token(), n.URL()
	must := func(method, path, body string, want int) string {
		t.Helper()
		code, resp := do(t, c, method, url+path, tok, body)
		if code != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, code, resp, want)
		}
		return resp
	}
	must("POST", "/models", `[{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Room;1","@type":"Interface","contents":[
		{"@type":"Property","name":"co2","schema":"double"},{"@type":"Property","name":"alert","schema":"boolean"}]}]`, 201)
	must("PUT", "/digitaltwins/room-1", `{"$metadata":{"$model":"dtmi:ex:Room;1"},"co2":400}`, 200)
	deploy, _ := json.Marshal(map[string]any{
		"manifest": map[string]any{"name": "alert", "version": "1",
			"triggers": []map[string]any{{"events": []string{"property"}, "models": []string{"dtmi:ex:Room;1"}, "properties": []string{"co2"}}},
			"config":   map[string]any{"property": "co2", "above": 1000, "flag": "alert"},
			"grants":   []map[string]any{{"role": "writer", "scope": map[string]any{"kind": "model", "model": "dtmi:ex:Room;1"}}}},
		"module": base64.StdEncoding.EncodeToString(wasm),
	})
	must("POST", "/handlers", string(deploy), 201)

	// alert reads the twin at path (main or a branch) until it is want.
	alert := func(path string, want bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var tw map[string]any
			json.Unmarshal([]byte(must("GET", path, "", 200)), &tw)
			if tw["alert"] == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: alert = %v, want %v", path, tw["alert"], want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	must("PATCH", "/digitaltwins/room-1", `[{"op":"replace","path":"/co2","value":1200}]`, 204)
	alert("/digitaltwins/room-1", true)

	// A branch forked now, with the deployed handler, fed a patch that
	// brings co2 down: the handler lowers the flag in the branch only.
	var created struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(must("POST", "/simulations", `{"deployedHandlers":true,
		"events":[{"twinId":"room-1","patch":[{"op":"replace","path":"/co2","value":500}]}]}`, 201)), &created)
	if created.ID == "" {
		t.Fatal("no branch id")
	}
	alert("/simulations/"+created.ID+"/digitaltwins/room-1", false)
	alert("/digitaltwins/room-1", true)
	var main map[string]any
	json.Unmarshal([]byte(must("GET", "/digitaltwins/room-1", "", 200)), &main)
	if main["co2"] != 1200.0 {
		t.Fatalf("main graph changed by the branch: %v", main)
	}

	// Deleting the branch closes its handlers, not the shared host: a
	// second branch runs the handler again, and so does the main graph.
	must("DELETE", "/simulations/"+created.ID, "", 204)
	json.Unmarshal([]byte(must("POST", "/simulations", `{"deployedHandlers":true,
		"events":[{"twinId":"room-1","patch":[{"op":"replace","path":"/co2","value":300}]}]}`, 201)), &created)
	alert("/simulations/"+created.ID+"/digitaltwins/room-1", false)
	must("DELETE", "/simulations/"+created.ID, "", 204)
	must("PATCH", "/digitaltwins/room-1", `[{"op":"replace","path":"/co2","value":700}]`, 204)
	alert("/digitaltwins/room-1", false)
}
