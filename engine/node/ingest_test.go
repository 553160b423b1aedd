package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/node"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// TestIngestDefaultLayout posts telemetry through the node's default
// ingestion path and checks what the log holds, and that the per-twin
// telemetry API still de-duplicates message ids, including those of
// ingested points.
func TestIngestDefaultLayout(t *testing.T) {
	n, stop := start(t, node.Config{DataDir: t.TempDir()})
	defer stop()
	tok, c := n.Token(), http.DefaultClient
	model := `[{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Room;1","@type":"Interface",
		"contents":[{"@type":"Telemetry","name":"temperature","schema":"double"}]}]`
	if code, body := do(t, c, "POST", n.URL()+"/models", tok, model); code != 201 {
		t.Fatalf("create model: %d %s", code, body)
	}
	for _, id := range []string{"room-1", "room-2"} {
		if code, body := do(t, c, "PUT", n.URL()+"/digitaltwins/"+id, tok, `{"$metadata":{"$model":"dtmi:ex:Room;1"}}`); code != 200 {
			t.Fatalf("put twin: %d %s", code, body)
		}
	}
	code, body := do(t, c, "POST", n.URL()+"/ingest", tok, `[{"twinId":"room-1","temperature":20,"messageId":"m-1"},
		{"twinId":"room-2","temperature":21},{"twinId":"room-1","temperature":22,"messageId":"m-2"}]`)
	if code != 200 {
		t.Fatalf("ingest: %d %s", code, body)
	}
	var rep struct{ Accepted, Position int }
	if err := json.Unmarshal([]byte(body), &rep); err != nil || rep.Accepted != 3 {
		t.Fatalf("ingest report %s: %v", body, err)
	}
	ctx := context.Background()
	lg := n.Engine().Log()
	evs, err := lg.Read(ctx, uint64(rep.Position), 1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("read %d: %v", rep.Position, err)
	}
	if e := evs[0]; e.Type != twingraph.TypeTelemetryBatch || !strings.HasPrefix(e.Stream, "ingest/") {
		t.Fatalf("ingested event: %s on %s, want one %s", e.Type, e.Stream, twingraph.TypeTelemetryBatch)
	}

	send := func(id, msgID string) {
		t.Helper()
		req, _ := http.NewRequest("POST", n.URL()+"/digitaltwins/"+id+"/telemetry", strings.NewReader(`{"temperature":30}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Message-Id", msgID)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Fatalf("send telemetry %s to %s: status %d", msgID, id, resp.StatusCode)
		}
	}
	head := func() uint64 {
		h, err := lg.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for _, tc := range []struct {
		twin, msgID string
		appends     bool
	}{
		{"room-1", "m-2", false}, // ingested
		{"room-1", "m-1", false}, // ingested earlier in the batch
		{"room-2", "m-1", true},  // another twin's
		{"room-2", "m-3", true},
		{"room-2", "m-3", false}, // sent just before
		{"room-1", "m-3", true},
	} {
		before := head()
		send(tc.twin, tc.msgID)
		if got := head() > before; got != tc.appends {
			t.Errorf("%s to %s: appended=%v, want %v", tc.msgID, tc.twin, got, tc.appends)
		}
	}
	// Last-known telemetry and history agree with what was sent.
	code, body = do(t, c, "GET", n.URL()+"/telemetry?twin=room-1&from=-1h&to=1h&agg=count,last", tok, "")
	if code != 200 || !strings.Contains(body, `"count":3`) || !strings.Contains(body, `"last":30`) {
		t.Fatalf("telemetry history of room-1: %d %s", code, body)
	}
}
