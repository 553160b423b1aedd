package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/authn"
	"github.com/twinlog/twinlog/engine/authz"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/httpapi"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/ingest"
	"github.com/twinlog/twinlog/processors/simulate"
	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/timetravel"
	"github.com/twinlog/twinlog/projections/twingraph"
)

var authSecret = []byte("0123456789abcdef0123456789abcdef")

const authModels = `[
{"@context":"dtmi:dtdl:context;3","@id":"dtmi:t:Space;1","@type":"Interface","contents":[
 {"@type":"Property","name":"name","schema":"string"},
 {"@type":"Telemetry","name":"t","schema":"double"},
 {"@type":"Relationship","name":"contains"},{"@type":"Relationship","name":"near"}]},
{"@context":"dtmi:dtdl:context;3","@id":"dtmi:t:Building;1","@type":"Interface","extends":"dtmi:t:Space;1"},
{"@context":"dtmi:dtdl:context;3","@id":"dtmi:t:Room;1","@type":"Interface","extends":"dtmi:t:Space;1"}]`

type authEnv struct {
	srv   *httptest.Server
	eng   *engine.Engine
	store *authz.Store
	keys  *authn.Keys
	// bearer tokens by principal name
	tok map[string]string
}

// jwtFor signs an HS256 token for sub with groups, modified by mod.
func jwtFor(t testing.TB, sub string, groups []string, mod func(jwt.MapClaims)) string {
	t.Helper()
	c := jwt.MapClaims{"iss": "dev", "sub": sub, "aud": "twinlog", "exp": time.Now().Add(time.Hour).Unix(), "groups": groups}
	if mod != nil {
		mod(c)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(authSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newAuthEngine starts an engine over a memlog with the twin graph, the
// grants and the API keys.
func newAuthEngine(t *testing.T) (*twingraph.Graph, *authz.Store, *authn.Keys, *engine.Engine) {
	t.Helper()
	g := twingraph.New(twingraph.Options{})
	store := authz.New(authz.Options{Models: func() authz.ModelChecker { return g.Snapshot().Models() }, Outgoing: authz.GraphOutgoing(g)})
	keys := authn.NewKeys()
	eng, err := engine.New(memlog.New(memlog.Options{}), engine.Options{}, g, store, keys)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	return g, store, keys, eng
}

// newAuthEnv serves buildings B1 and B2 containing rooms R1 and R2, with
// grants of every role on every kind of scope. Its server keeps each
// request's caller in the connection's slot, as a node does.
func newAuthEnv(t *testing.T) *authEnv {
	t.Helper()
	return newAuthEnvConn(t, serverNode)
}

// The servers an auth environment can run on.
const (
	serverNode    = "node"           // the node's: httpserve with connection slots
	serverSlots   = "net/http+slots" // net/http with connection slots
	serverNoSlots = "net/http"       // net/http: the caller travels in the request's context
)

// newAuthEnvConn is newAuthEnv on the given server.
func newAuthEnvConn(t *testing.T, server string) *authEnv {
	t.Helper()
	g, store, keys, eng := newAuthEngine(t)
	v, err := authn.NewVerifier(authn.Config{Issuers: []*authn.Issuer{{Issuer: "dev", HS256Secret: authSecret}}, Audience: "twinlog"})
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(httpapi.Config{Engine: eng, Token: token, MaxBodyBytes: 1 << 20, Logger: slog.New(slog.DiscardHandler)})
	api.RegisterTwins(twins.New(eng, g, twins.Options{}))
	api.RegisterQuery(graphquery.New(g, graphquery.Options{}))
	api.RegisterAuth(&httpapi.Auth{Verifier: v, Keys: keys, Grants: store, Graph: g})
	tt, err := timetravel.New(eng.Log(), g, timetravel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulate.New(eng.Log(), tt, simulate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	api.RegisterSimulations(sim)
	ok := func(w http.ResponseWriter, r *http.Request) error {
		w.Write([]byte(`{"value":[]}`))
		return nil
	}
	// Stand-ins for the routes other packages serve: only the policy in
	// front of them is under test here.
	in, err := ingest.New(eng, g, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	api.RegisterIngest(in)
	for _, p := range []string{"GET /digitaltwins/{id}/history", "GET /handlers", "POST /handlers",
		"GET /eventroutes", "PUT /endpoints/{name}", "GET /devices", "GET /telemetry", "GET /telemetry/models"} {
		api.Handle(p, ok)
	}
	var srv *httptest.Server
	if server == serverNode {
		srv = serveNode(t, api)
	} else {
		srv = httptest.NewUnstartedServer(api)
		if server == serverSlots {
			srv.Config.ConnContext = api.ConnContext
		}
		srv.Start()
	}
	t.Cleanup(srv.Close)
	e := &authEnv{srv: srv, eng: eng, store: store, keys: keys, tok: map[string]string{"admin": token}}
	mustStatus(t, call(t, srv, "POST", "/models", authModels), 201)
	for _, tw := range []struct{ id, model string }{{"B1", "Building"}, {"B2", "Building"}, {"R1", "Room"}, {"R2", "Room"}} {
		mustStatus(t, call(t, srv, "PUT", "/digitaltwins/"+tw.id, fmt.Sprintf(`{"$metadata":{"$model":"dtmi:t:%s;1"},"name":%q}`, tw.model, tw.id)), 200)
	}
	mustStatus(t, call(t, srv, "PUT", "/digitaltwins/B1/relationships/c1", `{"$targetId":"R1","$relationshipName":"contains"}`), 200)
	mustStatus(t, call(t, srv, "PUT", "/digitaltwins/B2/relationships/c2", `{"$targetId":"R2","$relationshipName":"contains"}`), 200)
	mustStatus(t, call(t, srv, "PUT", "/digitaltwins/R1/relationships/n1", `{"$targetId":"R2","$relationshipName":"near"}`), 200)

	r := call(t, srv, "POST", "/apikeys", `{"name":"sensor"}`)
	mustStatus(t, r, 201)
	var key struct{ ID, Key, Principal string }
	json.Unmarshal([]byte(r.body), &key)
	e.tok["sender"] = key.Key
	r = call(t, srv, "POST", "/apikeys", `{"name":"old"}`)
	var old struct{ ID, Key string }
	json.Unmarshal([]byte(r.body), &old)
	mustStatus(t, call(t, srv, "DELETE", "/apikeys/"+old.ID, ""), 204)
	e.tok["revoked key"] = old.Key

	subtree := func(root string) string {
		return fmt.Sprintf(`{"kind":"subtree","root":%q,"relationships":["contains"]}`, root)
	}
	for _, gr := range []struct{ principal, role, scope string }{
		{"user:own", "owner", `{"kind":"instance"}`},
		{"user:w", "writer", subtree("B1")},
		{"user:r", "reader", subtree("B1")},
		{"group:rooms", "reader", `{"kind":"model","model":"dtmi:t:Room;1"}`},
		{key.Principal, "telemetry-sender", `{"kind":"twins","twins":["R1"]}`},
		{"user:h", "handler-admin", `{"kind":"instance"}`},
		{"user:ra", "route-admin", `{"kind":"instance"}`},
	} {
		mustStatus(t, call(t, srv, "POST", "/grants", fmt.Sprintf(`{"principal":%q,"role":%q,"scope":%s}`, gr.principal, gr.role, gr.scope)), 201)
	}
	for name, sub := range map[string]string{"owner": "own", "writer B1": "w", "reader B1": "r", "handler-admin": "h", "route-admin": "ra", "stranger": "eve"} {
		e.tok[name] = jwtFor(t, sub, nil, nil)
	}
	e.tok["reader rooms"] = jwtFor(t, "carol", []string{"rooms"}, nil)
	e.tok["expired"] = jwtFor(t, "own", nil, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
	e.tok["wrong issuer"] = jwtFor(t, "own", nil, func(c jwt.MapClaims) { c["iss"] = "evil" })
	e.tok["wrong audience"] = jwtFor(t, "own", nil, func(c jwt.MapClaims) { c["aud"] = "other" })
	e.tok["no token"] = ""
	return e
}

func mustStatus(t *testing.T, r reply, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
}

func (e *authEnv) do(t *testing.T, who, method, path, body string, hdr ...string) reply {
	t.Helper()
	bearer := "" // no token: an empty Authorization header, as none
	if tok := e.tok[who]; tok != "" {
		bearer = "Bearer " + tok
	}
	return call(t, e.srv, method, path, body, append([]string{"Authorization", bearer}, hdr...)...)
}

// TestAuthMatrix walks every endpoint for every principal, on a twin inside
// and outside its scope, and checks the status and that a refusal tells
// nothing about twins outside the scope.
// Consecutive requests of different callers share connections, so with
// connection slots it also checks that no caller outlives its request.
func TestAuthMatrix(t *testing.T) {
	for _, server := range []string{serverNode, serverSlots, serverNoSlots} {
		t.Run(server, func(t *testing.T) { testAuthMatrix(t, newAuthEnvConn(t, server)) })
	}
}

func testAuthMatrix(t *testing.T, e *authEnv) {
	// What each principal may do to each twin (read, write, telemetry)
	// and on the instance.
	type rights struct {
		read, write, telemetry map[string]bool
		models, writeModels    bool
		ingest, handlers       bool
		routes, admin          bool
	}
	set := func(ids ...string) map[string]bool {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	all := set("B1", "B2", "R1", "R2")
	who := map[string]rights{
		"admin":          {all, all, all, true, true, true, true, true, true},
		"owner":          {all, all, all, true, true, true, true, true, true},
		"writer B1":      {read: set("B1", "R1"), write: set("B1", "R1"), telemetry: set("B1", "R1"), models: true},
		"reader B1":      {read: set("B1", "R1"), models: true},
		"reader rooms":   {read: set("R1", "R2"), models: true},
		"sender":         {telemetry: set("R1")},
		"handler-admin":  {models: true, handlers: true},
		"route-admin":    {routes: true},
		"stranger":       {},
		"no token":       {},
		"expired":        {},
		"wrong issuer":   {},
		"wrong audience": {},
		"revoked key":    {},
	}
	unauthenticated := map[string]bool{"no token": true, "expired": true, "wrong issuer": true, "wrong audience": true, "revoked key": true}
	type kind int
	const (
		read kind = iota
		write
		telemetry
		instance
	)
	endpoints := []struct {
		name, method, path, body string
		hdr                      []string
		kind                     kind
		ok                       int // status when allowed
		allowed                  func(rights) bool
	}{
		{"get twin", "GET", "/digitaltwins/%s", "", nil, read, 200, nil},
		{"get twin asOf", "GET", "/digitaltwins/%s?asOf=1", "", nil, read, 400, nil}, // no history on this server
		{"list relationships", "GET", "/digitaltwins/%s/relationships", "", nil, read, 200, nil},
		{"incoming", "GET", "/digitaltwins/%s/incomingrelationships", "", nil, read, 200, nil},
		{"get relationship", "GET", "/digitaltwins/%s/relationships/none", "", nil, read, 404, nil},
		{"get component", "GET", "/digitaltwins/%s/components/none", "", nil, read, 404, nil},
		{"history", "GET", "/digitaltwins/%s/history", "", nil, read, 200, nil},
		{"telemetry history", "GET", "/telemetry?twin=%s", "", nil, read, 200, nil},
		{"patch twin", "PATCH", "/digitaltwins/%s", `[{"op":"replace","path":"/name","value":"x"}]`, nil, write, 204, nil},
		{"put twin", "PUT", "/digitaltwins/%s", `{"$metadata":{"$model":"dtmi:t:Space;1"}}`, []string{"If-None-Match", "*"}, write, 412, nil},
		{"patch component", "PATCH", "/digitaltwins/%s/components/none", `[]`, nil, write, 404, nil},
		{"delete twin", "DELETE", "/digitaltwins/%s", "", []string{"If-Match", `W/"0"`}, write, 412, nil},
		{"delete relationship", "DELETE", "/digitaltwins/%s/relationships/none", "", nil, write, 404, nil},
		{"patch relationship", "PATCH", "/digitaltwins/%s/relationships/none", `[]`, nil, write, 404, nil},
		{"telemetry", "POST", "/digitaltwins/%s/telemetry", `{"t":1}`, []string{"Message-Id", "m1"}, telemetry, 204, nil},
		{"list models", "GET", "/models", "", nil, instance, 200, func(r rights) bool { return r.models }},
		{"get model", "GET", "/models/dtmi:t:Room;1", "", nil, instance, 200, func(r rights) bool { return r.models }},
		{"add models", "POST", "/models", `[]`, nil, instance, 400, func(r rights) bool { return r.writeModels }},
		{"delete model", "DELETE", "/models/dtmi:t:None;1", "", nil, instance, 404, func(r rights) bool { return r.writeModels }},
		{"handlers", "GET", "/handlers", "", nil, instance, 200, func(r rights) bool { return r.handlers }},
		{"deploy handler", "POST", "/handlers", "", nil, instance, 200, func(r rights) bool { return r.handlers }},
		{"routes", "GET", "/eventroutes", "", nil, instance, 200, func(r rights) bool { return r.routes }},
		{"endpoints", "PUT", "/endpoints/e", "", nil, instance, 200, func(r rights) bool { return r.routes }},
		{"devices", "GET", "/devices", "", nil, instance, 200, func(r rights) bool { return r.admin }},
		{"grants", "GET", "/grants", "", nil, instance, 200, func(r rights) bool { return r.admin }},
		{"apikeys", "GET", "/apikeys", "", nil, instance, 200, func(r rights) bool { return r.admin }},
		{"audit", "GET", "/audit", "", nil, instance, 200, func(r rights) bool { return r.admin }},
		{"telemetry models", "GET", "/telemetry/models", "", nil, instance, 200, func(r rights) bool { return r.models }},
		{"query", "POST", "/query", `{"query":"SELECT COUNT() FROM DIGITALTWINS"}`, nil, instance, 200, func(rights) bool { return true }},
	}
	for name, rt := range who {
		for _, ep := range endpoints {
			twinsOf := []string{""}
			if ep.kind != instance {
				twinsOf = []string{"R1", "R2", "B2"}
			}
			for _, id := range twinsOf {
				path := ep.path
				if id != "" {
					path = fmt.Sprintf(ep.path, id)
				}
				label := fmt.Sprintf("%s/%s/%s", name, ep.name, id)
				r := e.do(t, name, ep.method, path, ep.body, ep.hdr...)
				want, code := ep.ok, ""
				switch {
				case unauthenticated[name]:
					want, code = 401, "Unauthorized"
				case ep.kind == instance:
					if !ep.allowed(rt) {
						want, code = 403, "Forbidden"
					}
				case ep.name == "telemetry history" && !rt.read[id]:
					want, code = 403, "Forbidden"
				case ep.kind == read && !rt.read[id]:
					want, code = 404, "DigitalTwinNotFound"
				case ep.kind == write && !rt.write[id] || ep.kind == telemetry && !rt.telemetry[id]:
					want, code = 404, "DigitalTwinNotFound"
					if rt.read[id] || ep.name == "put twin" {
						want, code = 403, "Forbidden"
					}
				}
				if r.status != want {
					t.Errorf("%s: status %d, want %d: %s", label, r.status, want, r.body)
					continue
				}
				if code == "" {
					continue
				}
				if got := errCode(t, r); got != code {
					t.Errorf("%s: code %s, want %s", label, got, code)
				}
				if code == "DigitalTwinNotFound" {
					// Indistinguishable from a twin that does not exist.
					ghost := e.do(t, "admin", "GET", "/digitaltwins/ghost", "")
					if strings.ReplaceAll(r.body, id, "ghost") != ghost.body {
						t.Errorf("%s: hidden twin answer %s differs from a missing twin's %s", label, r.body, ghost.body)
					}
				}
				if want >= 400 && strings.Contains(r.body, `"value"`) {
					t.Errorf("%s: refusal carries data: %s", label, r.body)
				}
			}
		}
	}
}

func queryRows(t *testing.T, e *authEnv, who, q string) []string {
	t.Helper()
	r := e.do(t, who, "POST", "/query", fmt.Sprintf(`{"query":%q}`, q))
	mustStatus(t, r, 200)
	var out struct {
		Value []json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		t.Fatal(err)
	}
	rows := make([]string, len(out.Value))
	for i, v := range out.Value {
		rows[i] = string(v)
	}
	return rows
}

func TestAuthQuery(t *testing.T) {
	e := newAuthEnv(t)
	tests := []struct {
		who, query string
		want       string
	}{
		{"admin", "SELECT COUNT() FROM DIGITALTWINS", `{"COUNT":4}`},
		{"reader B1", "SELECT COUNT() FROM DIGITALTWINS", `{"COUNT":2}`},
		{"reader rooms", "SELECT COUNT() FROM DIGITALTWINS", `{"COUNT":2}`},
		{"sender", "SELECT COUNT() FROM DIGITALTWINS", `{"COUNT":0}`},
		{"stranger", "SELECT COUNT() FROM RELATIONSHIPS", `{"COUNT":0}`},
		{"admin", "SELECT COUNT() FROM DIGITALTWINS B JOIN R RELATED B.contains", `{"COUNT":2}`},
		{"reader B1", "SELECT COUNT() FROM DIGITALTWINS B JOIN R RELATED B.contains", `{"COUNT":1}`},
		{"reader rooms", "SELECT COUNT() FROM DIGITALTWINS B JOIN R RELATED B.contains", `{"COUNT":0}`},
		{"reader rooms", "SELECT COUNT() FROM DIGITALTWINS MATCH (a)-[:near]->(b)", `{"COUNT":1}`},
		{"reader B1", "SELECT COUNT() FROM DIGITALTWINS MATCH (a)-[:near]->(b)", `{"COUNT":0}`},
		{"reader B1", "SELECT COUNT() FROM DIGITALTWINS MATCH (a)-[*..3]-(b) WHERE a.$dtId = 'B1'", `{"COUNT":1}`},
		{"reader B1", "SELECT COUNT() FROM RELATIONSHIPS", `{"COUNT":1}`},
		{"writer B1", "SELECT T.$dtId AS id FROM DIGITALTWINS T WHERE T.$dtId IN ['R1', 'R2']", `{"id":"R1"}`},
	}
	for _, tc := range tests {
		got := strings.Join(queryRows(t, e, tc.who, tc.query), ",")
		if got != tc.want {
			t.Errorf("%s: %s = %s, want %s", tc.who, tc.query, got, tc.want)
		}
	}
}

// TestAuthSubtreeMove moves a room between buildings and checks that the
// grant on the old building stops covering it, and the new one starts.
func TestAuthSubtreeMove(t *testing.T) {
	e := newAuthEnv(t)
	mustStatus(t, e.do(t, "reader B1", "GET", "/digitaltwins/R1", ""), 200)
	mustStatus(t, call(t, e.srv, "DELETE", "/digitaltwins/B1/relationships/c1", ""), 204)
	mustStatus(t, call(t, e.srv, "PUT", "/digitaltwins/B2/relationships/c3", `{"$targetId":"R1","$relationshipName":"contains"}`), 200)
	mustStatus(t, e.do(t, "reader B1", "GET", "/digitaltwins/R1", ""), 404)
	if got := queryRows(t, e, "reader B1", "SELECT COUNT() FROM DIGITALTWINS"); got[0] != `{"COUNT":1}` {
		t.Fatalf("count after move %v", got)
	}
	r := call(t, e.srv, "POST", "/grants", `{"principal":"user:w2","role":"writer","scope":{"kind":"subtree","root":"B2"}}`)
	mustStatus(t, r, 201)
	e.tok["w2"] = jwtFor(t, "w2", nil, nil)
	mustStatus(t, e.do(t, "w2", "PATCH", "/digitaltwins/R1", `[{"op":"replace","path":"/name","value":"moved"}]`), 204)
	// The event records the real actor, and the audit log finds it.
	r = e.do(t, "owner", "GET", "/audit?principal=user:w2&twin=R1", "")
	mustStatus(t, r, 200)
	if !strings.Contains(r.body, `"type":"twin.patched"`) || strings.Count(r.body, `"position"`) != 1 {
		t.Fatalf("audit %s", r.body)
	}
	// A writer may not link its twin to a twin it cannot read.
	r = e.do(t, "writer B1", "PUT", "/digitaltwins/B1/relationships/x", `{"$targetId":"R2","$relationshipName":"contains"}`)
	if r.status != 404 || errCode(t, r) != "TargetTwinNotFound" {
		t.Fatalf("link to hidden twin: %d %s", r.status, r.body)
	}
	// Revoking the grant ends the access.
	var g struct{ ID string }
	var list struct{ Value []authz.Grant }
	json.Unmarshal([]byte(call(t, e.srv, "GET", "/grants", "").body), &list)
	for _, x := range list.Value {
		if x.Principal == "user:w2" {
			g.ID = x.ID
		}
	}
	mustStatus(t, call(t, e.srv, "DELETE", "/grants/"+g.ID, ""), 204)
	mustStatus(t, e.do(t, "w2", "GET", "/digitaltwins/R1", ""), 404)
}

// TestAuthRelationshipEnds checks that relationship reads do not reveal the
// twin at the other end when the caller may not read it.
func TestAuthRelationshipEnds(t *testing.T) {
	e := newAuthEnv(t)
	// reader B1 reads B1 and R1 (contains); R1's "near" points at hidden R2.
	r := e.do(t, "reader B1", "GET", "/digitaltwins/R1/relationships", "")
	mustStatus(t, r, 200)
	if strings.Contains(r.body, "R2") {
		t.Fatalf("outgoing list reveals a hidden target: %s", r.body)
	}
	r = e.do(t, "reader B1", "GET", "/digitaltwins/R1/relationships/n1", "")
	mustStatus(t, r, 404)
	if strings.Contains(r.body, "R2") {
		t.Fatalf("relationship read reveals a hidden target: %s", r.body)
	}
	// reader rooms reads R1 and R2 but not B1, which contains R1.
	r = e.do(t, "reader rooms", "GET", "/digitaltwins/R1/incomingrelationships", "")
	mustStatus(t, r, 200)
	if strings.Contains(r.body, "B1") {
		t.Fatalf("incoming list reveals a hidden source: %s", r.body)
	}
	r = e.do(t, "reader rooms", "GET", "/digitaltwins/R1/relationships", "")
	mustStatus(t, r, 200)
	if !strings.Contains(r.body, `"$targetId":"R2"`) {
		t.Fatalf("a visible target was hidden: %s", r.body)
	}
	// The admin sees everything.
	r = e.do(t, "admin", "GET", "/digitaltwins/R1/incomingrelationships", "")
	if !strings.Contains(r.body, "B1") {
		t.Fatalf("admin does not see B1: %s", r.body)
	}
}

// TestAuthIngest checks that /ingest decides point by point: points to twins
// the caller may send to are accepted, the others rejected, as
// DigitalTwinNotFound when the caller may not even see the twin.
func TestAuthIngest(t *testing.T) {
	e := newAuthEnv(t)
	body := `[{"twinId":"R1","t":1},{"twinId":"R2","t":2},{"twinId":"B1","t":3}]`
	tests := []struct {
		who      string
		status   int
		accepted int
		codes    map[int]string
	}{
		{"admin", 200, 3, nil},
		{"sender", 200, 1, map[int]string{1: "DigitalTwinNotFound", 2: "DigitalTwinNotFound"}},
		{"writer B1", 200, 2, map[int]string{1: "DigitalTwinNotFound"}},
		{"reader B1", 400, 0, map[int]string{0: "Forbidden", 1: "DigitalTwinNotFound", 2: "Forbidden"}},
		{"stranger", 400, 0, map[int]string{0: "DigitalTwinNotFound", 1: "DigitalTwinNotFound", 2: "DigitalTwinNotFound"}},
		{"no token", 401, 0, nil},
	}
	for _, tc := range tests {
		r := e.do(t, tc.who, "POST", "/ingest", body)
		if r.status != tc.status {
			t.Fatalf("%s: status %d, want %d: %s", tc.who, r.status, tc.status, r.body)
		}
		if tc.status == 401 {
			continue
		}
		var rep struct {
			Accepted int `json:"accepted"`
			Rejected []struct {
				Index int    `json:"index"`
				Code  string `json:"code"`
			} `json:"rejected"`
		}
		json.Unmarshal([]byte(r.body), &rep)
		got := map[int]string{}
		for _, rj := range rep.Rejected {
			got[rj.Index] = rj.Code
		}
		if rep.Accepted != tc.accepted || len(got) != len(tc.codes) {
			t.Fatalf("%s: accepted %d, rejected %v; want %d, %v", tc.who, rep.Accepted, got, tc.accepted, tc.codes)
		}
		for i, c := range tc.codes {
			if got[i] != c {
				t.Fatalf("%s: point %d rejected as %q, want %q (%s)", tc.who, i, got[i], c, r.body)
			}
		}
	}
}

// TestCallerPerRequest sends requests of alternating callers over one
// kept-alive connection: each is decided by its own credentials, whatever
// the connection's previous request was.
func TestCallerPerRequest(t *testing.T) {
	e := newAuthEnv(t)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	var conns int
	trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
		if !ci.Reused {
			conns++
		}
	}}
	steps := []struct {
		who, method, path string
		want              int
	}{
		{"admin", "GET", "/digitaltwins/R2", 200},
		{"reader B1", "GET", "/digitaltwins/R1", 200},
		{"reader B1", "GET", "/digitaltwins/R2", 404},
		{"no token", "GET", "/digitaltwins/R1", 401},
		{"reader rooms", "GET", "/digitaltwins/R2", 200},
		{"expired", "GET", "/digitaltwins/R1", 401},
		{"stranger", "GET", "/digitaltwins/R1", 404},
		{"revoked key", "GET", "/digitaltwins/R1", 401},
		{"reader B1", "GET", "/digitaltwins/R1", 200},
		{"writer B1", "PATCH", "/digitaltwins/R1", 204},
		{"admin", "GET", "/digitaltwins/R1", 200},
		{"reader B1", "GET", "/digitaltwins/R1", 200},
		{"reader B1", "PATCH", "/digitaltwins/R1", 403},
		{"sender", "GET", "/grants", 403},
		{"admin", "GET", "/grants", 200},
		{"stranger", "GET", "/grants", 403},
		{"owner", "GET", "/digitaltwins/B2", 200},
		{"reader B1", "GET", "/digitaltwins/B2", 404},
	}
	name := "R1" // R1's name as last written
	for round := range 3 {
		for i, st := range steps {
			body := ""
			if st.method == "PATCH" {
				body = fmt.Sprintf(`[{"op":"replace","path":"/name","value":"R1-%d-%d"}]`, round, i)
			}
			req, _ := http.NewRequest(st.method, e.srv.URL+st.path, strings.NewReader(body))
			if tok := e.tok[st.who]; tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != st.want {
				t.Errorf("round %d step %d: %s %s %s: %d, want %d: %s", round, i, st.who, st.method, st.path, resp.StatusCode, st.want, b)
			}
			switch {
			case st.method == "PATCH" && resp.StatusCode == 204:
				name = fmt.Sprintf("R1-%d-%d", round, i)
			case st.method == "GET" && st.path == "/digitaltwins/R1" && resp.StatusCode == 200:
				// The twin read is the newest, with its own ETag.
				if !strings.Contains(string(b), `"name":"`+name+`"`) || !strings.Contains(string(b), `"$etag":`+strconv.Quote(resp.Header.Get("ETag"))) {
					t.Errorf("round %d step %d: %s read %s (ETag %s), want name %s", round, i, st.who, b, resp.Header.Get("ETag"), name)
				}
			}
		}
	}
	if conns != 1 {
		t.Fatalf("%d connections, want 1: the requests must share one", conns)
	}
	// The writes are recorded as their caller's.
	r := e.do(t, "admin", "GET", "/audit?principal=user:w", "")
	mustStatus(t, r, 200)
	if n := strings.Count(r.body, `"user:w"`); n < 3 {
		t.Fatalf("audit of user:w: %d entries naming it, want >= 3: %s", n, r.body)
	}
}
