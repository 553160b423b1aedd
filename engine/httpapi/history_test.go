package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/httpapi"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/timetravel"
	"github.com/twinlog/twinlog/projections/twingraph"
)

func newHistoryServer(t *testing.T) *httptest.Server {
	t.Helper()
	l := memlog.New(memlog.Options{})
	g := twingraph.New(twingraph.Options{})
	eng, err := engine.New(l, engine.Options{}, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	tt, err := timetravel.New(l, g, timetravel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(httpapi.Config{Engine: eng, Token: token})
	api.RegisterTwins(twins.New(eng, g, twins.Options{}))
	api.RegisterQuery(graphquery.New(g, graphquery.Options{}))
	api.RegisterHistory(tt, graphquery.Options{})
	srv := serveNode(t, api)
	t.Cleanup(srv.Close)
	return srv
}

func TestHistoryAPI(t *testing.T) {
	srv := newHistoryServer(t)
	must := func(r reply, status int) reply {
		t.Helper()
		if r.status != status {
			t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
		}
		return r
	}
	must(call(t, srv, "POST", "/models", roomModel), 201)
	must(call(t, srv, "PUT", "/digitaltwins/r1", `{"$metadata":{"$model":"dtmi:ex:Room;1"},"temperature":20}`), 200)
	must(call(t, srv, "PUT", "/digitaltwins/r2", `{"$metadata":{"$model":"dtmi:ex:Room;1"},"temperature":20}`), 200)
	must(call(t, srv, "PUT", "/digitaltwins/r1/relationships/adj", `{"$targetId":"r2","$relationshipName":"adjacentTo"}`), 200)
	must(call(t, srv, "GET", "/digitaltwins/r1?asOf=1000000", ""), 400) // beyond the head
	must(call(t, srv, "PATCH", "/digitaltwins/r1", `[{"op":"replace","path":"/temperature","value":25}]`), 204)
	must(call(t, srv, "DELETE", "/digitaltwins/r1/relationships/adj", ""), 204)
	must(call(t, srv, "DELETE", "/digitaltwins/r2", ""), 204)

	// Position 5 is right after the relationship was created (models,
	// r1, r2, relationship, marker).
	r := must(call(t, srv, "GET", "/digitaltwins/r1?asOf=5", ""), 200)
	if !strings.Contains(r.body, `"temperature":20`) || r.header.Get("twinlog-position") != "5" {
		t.Fatalf("r1 as of 5: %s %v", r.body, r.header)
	}
	if r := must(call(t, srv, "GET", "/digitaltwins/r1", ""), 200); !strings.Contains(r.body, `"temperature":25`) {
		t.Fatalf("r1 now: %s", r.body)
	}
	must(call(t, srv, "GET", "/digitaltwins/r2?asOf=5", ""), 200)
	if code := errCode(t, must(call(t, srv, "GET", "/digitaltwins/r2", ""), 404)); code != "DigitalTwinNotFound" {
		t.Fatalf("r2 now: %s", code)
	}
	if r := must(call(t, srv, "GET", "/digitaltwins/r1/relationships?asOf=5", ""), 200); !strings.Contains(r.body, `"$targetId":"r2"`) {
		t.Fatalf("relationships as of 5: %s", r.body)
	}
	must(call(t, srv, "GET", "/digitaltwins/r1/relationships/adj?asOf=5", ""), 200)
	must(call(t, srv, "GET", "/digitaltwins/r1/relationships/adj", ""), 404)
	if r := must(call(t, srv, "GET", "/digitaltwins/r2/incomingrelationships?asOf=5", ""), 200); !strings.Contains(r.body, `"$sourceId":"r1"`) {
		t.Fatalf("incoming as of 5: %s", r.body)
	}
	must(call(t, srv, "GET", "/digitaltwins/r1?asOf=2", ""), 200)
	must(call(t, srv, "GET", "/digitaltwins/r1?asOf=1", ""), 404)
	must(call(t, srv, "GET", "/digitaltwins/r1?asOf=2000-01-01T00:00:00Z", ""), 404)
	if code := errCode(t, must(call(t, srv, "GET", "/digitaltwins/r1?asOf=yesterday", ""), 400)); code != "InvalidArgument" {
		t.Fatalf("bad asOf: %s", code)
	}

	// Queries: the clause, the field, and both agreeing or not.
	for _, body := range []string{
		`{"query":"SELECT T.$dtId, T.temperature FROM DIGITALTWINS T ORDER BY T.$dtId AS OF 5"}`,
		`{"query":"SELECT T.$dtId, T.temperature FROM DIGITALTWINS T ORDER BY T.$dtId", "asOf":"5"}`,
		`{"query":"SELECT T.$dtId, T.temperature FROM DIGITALTWINS T ORDER BY T.$dtId AS OF 5", "asOf":"5"}`,
	} {
		r := must(call(t, srv, "POST", "/query", body), 200)
		var out struct{ Value []json.RawMessage }
		json.Unmarshal([]byte(r.body), &out)
		if len(out.Value) != 2 || string(out.Value[0]) != `{"$dtId":"r1","temperature":20}` {
			t.Fatalf("%s: %s", body, r.body)
		}
	}
	must(call(t, srv, "POST", "/query", `{"query":"SELECT * FROM DIGITALTWINS AS OF 5", "asOf":"4"}`), 400)
	must(call(t, srv, "POST", "/query", `{"query":"SELECT * FROM DIGITALTWINS AS OF 'soon'"}`), 400)
	// Paging an AS OF query continues on its view.
	r = must(call(t, srv, "POST", "/query", `{"query":"SELECT * FROM DIGITALTWINS","asOf":"5"}`, "max-items-per-page", "1"), 200)
	var page struct {
		Value             []json.RawMessage
		ContinuationToken string
	}
	json.Unmarshal([]byte(r.body), &page)
	if page.ContinuationToken == "" {
		t.Fatalf("no continuation: %s", r.body)
	}
	r = must(call(t, srv, "POST", "/query", `{"continuationToken":"`+page.ContinuationToken+`"}`, "max-items-per-page", "1"), 200)
	if !strings.Contains(r.body, `"$dtId":"r2"`) {
		t.Fatalf("second page: %s", r.body)
	}

	// History.
	r = must(call(t, srv, "GET", "/digitaltwins/r1/history", ""), 200)
	var hist struct {
		Value    []timetravel.Change
		NextLink string
	}
	if err := json.Unmarshal([]byte(r.body), &hist); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, c := range hist.Value {
		types = append(types, c.Type)
	}
	want := "twin.created relationship.created twin.patched relationship.deleted"
	if strings.Join(types, " ") != want {
		t.Fatalf("history types %v, want %s", types, want)
	}
	if p := hist.Value[2]; string(p.Patch) != `[{"op":"replace","path":"/temperature","value":25}]` || p.Actor == "" || p.Time == "" {
		t.Fatalf("patch change: %+v", p)
	}
	r = must(call(t, srv, "GET", "/digitaltwins/r1/history?to=5", "", "max-items-per-page", "1"), 200)
	json.Unmarshal([]byte(r.body), &hist)
	if len(hist.Value) != 1 || hist.NextLink == "" {
		t.Fatalf("first page: %s", r.body)
	}
	u, _ := url.Parse(hist.NextLink)
	r = must(call(t, srv, "GET", u.RequestURI(), "", "max-items-per-page", "1"), 200)
	hist.NextLink = ""
	json.Unmarshal([]byte(r.body), &hist)
	if len(hist.Value) != 1 || hist.Value[0].Type != "relationship.created" || hist.NextLink != "" {
		t.Fatalf("second page: %s", r.body)
	}
	if code := errCode(t, must(call(t, srv, "GET", "/digitaltwins/nobody/history", ""), 404)); code != "DigitalTwinNotFound" {
		t.Fatalf("unknown twin history: %s", code)
	}
}

// TestAsOfWithoutHistory: a node without time travel refuses asOf and AS
// OF rather than answering with the present.
func TestAsOfWithoutHistory(t *testing.T) {
	srv := newServer(t)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/digitaltwins/x?asOf=1", ""},
		{"POST", "/query", `{"query":"SELECT * FROM DIGITALTWINS AS OF 1"}`},
		{"POST", "/query", `{"query":"SELECT * FROM DIGITALTWINS","asOf":"1"}`},
	} {
		r := call(t, srv, c.method, c.path, c.body)
		if r.status != 400 || errCode(t, r) != "FeatureNotEnabled" {
			t.Fatalf("%s %s: %d %s", c.method, c.path, r.status, r.body)
		}
	}
}
