package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/httpapi"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/twingraph"
)

const token = "secret"

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	g := twingraph.New(twingraph.Options{})
	eng, err := engine.New(memlog.New(memlog.Options{}), engine.Options{}, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	api := httpapi.New(httpapi.Config{Engine: eng, Token: token, MaxBodyBytes: 1 << 20})
	api.RegisterTwins(twins.New(eng, g, twins.Options{}))
	api.RegisterQuery(graphquery.New(g, graphquery.Options{}))
	srv := serveNode(t, api)
	t.Cleanup(srv.Close)
	return srv
}

type reply struct {
	status int
	header http.Header
	body   string
}

func call(t *testing.T, srv *httptest.Server, method, path, body string, hdr ...string) reply {
	t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = srv.URL + path
	}
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func errCode(t *testing.T, r reply) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not an ADT error body: %d %q", r.status, r.body)
	}
	if h := r.header.Get("x-ms-error-code"); h != e.Error.Code {
		t.Fatalf("x-ms-error-code %q, body code %q", h, e.Error.Code)
	}
	return e.Error.Code
}

const roomModel = `[{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Room;1","@type":"Interface",
	"contents":[{"@type":"Property","name":"temperature","schema":"double"},
	{"@type":"Relationship","name":"adjacentTo","target":"dtmi:ex:Room;1"}]}]`

func TestErrors(t *testing.T) {
	srv := newServer(t)
	if r := call(t, srv, "POST", "/models", roomModel); r.status != 201 {
		t.Fatalf("create model: %d %s", r.status, r.body)
	}
	tests := []struct {
		name         string
		method, path string
		body         string
		hdr          []string
		status       int
		code         string
	}{
		{"missing twin", "GET", "/digitaltwins/nope", "", nil, 404, "DigitalTwinNotFound"},
		{"missing model", "GET", "/models/dtmi:ex:Nope;1", "", nil, 404, "ModelNotFound"},
		{"old api-version", "GET", "/models?api-version=2019-01-01", "", nil, 400, "UnsupportedApiVersion"},
		{"bad api-version", "GET", "/models?api-version=latest", "", nil, 400, "InvalidArgument"},
		{"models not an array", "POST", "/models", `{"a":1}`, nil, 400, "InvalidArgument"},
		{"empty model batch", "POST", "/models", `[]`, nil, 400, "InvalidArgument"},
		{"duplicate model", "POST", "/models", roomModel, nil, 409, "ModelAlreadyExists"},
		{"invalid twin json", "PUT", "/digitaltwins/a", `{`, nil, 400, ""},
		{"wrong property type", "PUT", "/digitaltwins/a", `{"$metadata":{"$model":"dtmi:ex:Room;1"},"temperature":"hot"}`, nil, 400, "ValidationFailed"},
		{"bad patch", "PATCH", "/digitaltwins/nope", `{"op":"x"}`, nil, 0, ""},
		{"telemetry without Message-Id", "POST", "/digitaltwins/a/telemetry", `{}`, nil, 400, "InvalidArgument"},
		{"bad page size", "GET", "/models", "", []string{"max-items-per-page", "0"}, 400, "InvalidArgument"},
		{"bad continuation", "GET", "/models?continuationToken=zzz", "", nil, 400, "InvalidArgument"},
		{"unknown path", "GET", "/nothing/here", "", nil, 404, "ResourceNotFound"},
		{"wrong method", "POST", "/digitaltwins/a/relationships", "", nil, 405, "MethodNotAllowed"},
		{"too large", "PUT", "/digitaltwins/a", `{"x":"` + strings.Repeat("a", 2<<20) + `"}`, nil, 413, "PayloadTooLarge"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, srv, tc.method, tc.path, tc.body, tc.hdr...)
			if tc.status != 0 && r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if r.status < 400 {
				t.Fatalf("status %d for a bad request: %s", r.status, r.body)
			}
			code := errCode(t, r)
			if tc.code != "" && code != tc.code {
				t.Fatalf("code %q, want %q (%s)", code, tc.code, r.body)
			}
		})
	}
	// Nothing bad was written.
	if r := call(t, srv, "GET", "/digitaltwins/a", ""); r.status != 404 {
		t.Fatalf("rejected twin exists: %d %s", r.status, r.body)
	}
}

func TestStatusCodesAndETags(t *testing.T) {
	srv := newServer(t)
	call(t, srv, "POST", "/models", roomModel)
	put := call(t, srv, "PUT", "/digitaltwins/r1?api-version=2022-05-31", `{"$metadata":{"$model":"dtmi:ex:Room;1"},"temperature":20}`)
	if put.status != 200 || put.header.Get("ETag") == "" {
		t.Fatalf("PUT twin: %d etag %q", put.status, put.header.Get("ETag"))
	}
	var tw map[string]any
	json.Unmarshal([]byte(put.body), &tw)
	if tw["$dtId"] != "r1" || tw["$etag"] != put.header.Get("ETag") {
		t.Fatalf("PUT body %s", put.body)
	}
	if r := call(t, srv, "PUT", "/digitaltwins/r1", `{"$metadata":{"$model":"dtmi:ex:Room;1"}}`, "If-None-Match", "*"); r.status != 412 || errCode(t, r) != "PreconditionFailed" {
		t.Fatalf("create-only PUT on existing: %d %s", r.status, r.body)
	}
	patch := call(t, srv, "PATCH", "/digitaltwins/r1", `[{"op":"replace","path":"/temperature","value":21}]`, "If-Match", put.header.Get("ETag"))
	if patch.status != 204 || patch.header.Get("ETag") == "" || patch.header.Get("ETag") == put.header.Get("ETag") {
		t.Fatalf("PATCH: %d etag %q", patch.status, patch.header.Get("ETag"))
	}
	if r := call(t, srv, "PATCH", "/digitaltwins/r1", `[{"op":"replace","path":"/temperature","value":22}]`, "If-Match", put.header.Get("ETag")); r.status != 412 {
		t.Fatalf("stale If-Match: %d", r.status)
	}
	if r := call(t, srv, "DELETE", "/digitaltwins/r1", ""); r.status != 204 {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
}

func TestRelationshipPaging(t *testing.T) {
	srv := newServer(t)
	call(t, srv, "POST", "/models", roomModel)
	const n = 7
	for i := 0; i <= n; i++ {
		call(t, srv, "PUT", fmt.Sprintf("/digitaltwins/r%d", i), `{"$metadata":{"$model":"dtmi:ex:Room;1"}}`)
	}
	for i := 1; i <= n; i++ {
		r := call(t, srv, "PUT", fmt.Sprintf("/digitaltwins/r0/relationships/a%d", i),
			fmt.Sprintf(`{"$targetId":"r%d","$relationshipName":"adjacentTo"}`, i))
		if r.status != 200 {
			t.Fatalf("PUT relationship: %d %s", r.status, r.body)
		}
	}
	seen := map[string]bool{}
	next := "/digitaltwins/r0/relationships?api-version=2022-05-31"
	pages := 0
	for next != "" {
		r := call(t, srv, "GET", next, "", "max-items-per-page", "3")
		if r.status != 200 {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		var page struct {
			Value    []map[string]any `json:"value"`
			NextLink string           `json:"nextLink"`
		}
		json.Unmarshal([]byte(r.body), &page)
		if len(page.Value) > 3 {
			t.Fatalf("page of %d items, asked for 3", len(page.Value))
		}
		for _, rel := range page.Value {
			id := rel["$relationshipId"].(string)
			if seen[id] {
				t.Fatalf("relationship %s repeated", id)
			}
			seen[id] = true
		}
		if page.NextLink != "" {
			u, err := url.Parse(page.NextLink)
			if err != nil || !u.IsAbs() || u.Query().Get("api-version") != "2022-05-31" {
				t.Fatalf("nextLink %q is not absolute with the api-version", page.NextLink)
			}
		}
		next = page.NextLink
		pages++
	}
	if len(seen) != n || pages != 3 {
		t.Fatalf("saw %d relationships in %d pages, want %d in 3", len(seen), pages, n)
	}
	if r := call(t, srv, "GET", "/digitaltwins/r3/incomingrelationships", ""); r.status != 200 || !strings.Contains(r.body, `"$sourceId":"r0"`) {
		t.Fatalf("incoming: %d %s", r.status, r.body)
	}
}

func TestQuery(t *testing.T) {
	srv := newServer(t)
	call(t, srv, "POST", "/models", roomModel)
	for i := 0; i < 25; i++ {
		call(t, srv, "PUT", fmt.Sprintf("/digitaltwins/q%02d", i), fmt.Sprintf(`{"$metadata":{"$model":"dtmi:ex:Room;1"},"temperature":%d}`, i))
	}
	// A write is visible to the very next query (no indexing lag).
	call(t, srv, "PATCH", "/digitaltwins/q00", `[{"op":"replace","path":"/temperature","value":100}]`)
	r := call(t, srv, "POST", "/query", `{"query":"SELECT T.$dtId AS id FROM DIGITALTWINS T WHERE T.temperature >= 100"}`)
	if r.status != 200 || !strings.Contains(r.body, `"id":"q00"`) || r.header.Get("query-charge") == "" {
		t.Fatalf("query after write: %d %s (charge %q)", r.status, r.body, r.header.Get("query-charge"))
	}
	// Paging reads one snapshot: writes between pages neither skip nor
	// repeat rows.
	seen := map[string]int{}
	body := `{"query":"SELECT * FROM DIGITALTWINS T WHERE IS_OF_MODEL('dtmi:ex:Room;1')"}`
	for pages := 0; ; pages++ {
		r := call(t, srv, "POST", "/query", body, "max-items-per-page", "10")
		if r.status != 200 {
			t.Fatalf("page %d: %d %s", pages, r.status, r.body)
		}
		var page struct {
			Value             []map[string]any `json:"value"`
			ContinuationToken *string          `json:"continuationToken"`
		}
		json.Unmarshal([]byte(r.body), &page)
		for _, tw := range page.Value {
			seen[tw["$dtId"].(string)]++
		}
		call(t, srv, "PUT", fmt.Sprintf("/digitaltwins/new%d", pages), `{"$metadata":{"$model":"dtmi:ex:Room;1"}}`)
		if page.ContinuationToken == nil {
			break
		}
		tok, _ := json.Marshal(*page.ContinuationToken)
		body = `{"continuationToken":` + string(tok) + `}`
	}
	if len(seen) != 25 {
		t.Fatalf("paged query saw %d twins, want the 25 of its snapshot", len(seen))
	}
	for id, n := range seen {
		if n != 1 || strings.HasPrefix(id, "new") {
			t.Fatalf("twin %s seen %d times", id, n)
		}
	}
	// A syntax error names the position.
	r = call(t, srv, "POST", "/query", `{"query":"SELECT * FROM DIGITALTWINS WHERE"}`)
	if r.status != 400 || errCode(t, r) != "SqlQueryError" || !strings.Contains(r.body, "column") {
		t.Fatalf("syntax error: %d %s", r.status, r.body)
	}
}

// TestShortBody sends a PATCH whose body ends before its Content-Length:
// the request is refused as invalid and changes nothing.
func TestShortBody(t *testing.T) {
	srv := newServer(t)
	call(t, srv, "POST", "/models", roomModel)
	if r := call(t, srv, "PUT", "/digitaltwins/a", `{"$metadata":{"$model":"dtmi:ex:Room;1"},"temperature":20}`); r.status != 200 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `[{"op":"replace","path":"/temperature","value":30}]`
	fmt.Fprintf(conn, "PATCH /digitaltwins/a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		token, len(body)+40, body)
	conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if r := (reply{resp.StatusCode, resp.Header, string(b)}); r.status != 400 || errCode(t, r) != "InvalidArgument" {
		t.Fatalf("short body: %d %s", r.status, r.body)
	}
	if r := call(t, srv, "GET", "/digitaltwins/a", ""); !strings.Contains(r.body, `"temperature":20`) {
		t.Fatalf("the short patch changed the twin: %s", r.body)
	}
}
