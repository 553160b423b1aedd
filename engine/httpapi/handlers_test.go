package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"mime/multipart"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/authn"
	"github.com/twinlog/twinlog/engine/authz"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/httpapi"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/handlers"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/wasm-handlers/handlertest"
)

var trivial struct {
	once sync.Once
	wasm []byte
	err  error
}

// trivialModule builds the trivial example handler once per test binary.
func trivialModule(t *testing.T) []byte {
	t.Helper()
	trivial.once.Do(func() {
		dir, err := os.MkdirTemp("", "httpapi-wasm")
		if err != nil {
			trivial.err = err
			return
		}
		defer os.RemoveAll(dir)
		files, err := handlertest.Build(dir, map[string]string{"trivial": handlertest.Examples["trivial"]})
		if err != nil {
			trivial.err = err
			return
		}
		trivial.wasm, trivial.err = os.ReadFile(files["trivial"])
	})
	if trivial.err != nil {
		t.Fatal(trivial.err)
	}
	return trivial.wasm
}

func newHandlerServer(t *testing.T) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	g := twingraph.New(twingraph.Options{})
	eng, err := engine.New(memlog.New(memlog.Options{}), engine.Options{}, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	svc := twins.New(eng, g, twins.Options{})
	m, err := handlers.New(eng, svc, handlers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(httpapi.Config{Engine: eng, Token: token, MaxBodyBytes: 64 << 20})
	api.RegisterTwins(svc)
	api.RegisterHandlers(m)
	srv := serveNode(t, api)
	t.Cleanup(func() {
		srv.Close()
		m.Close()
		eng.Stop()
	})
	return srv
}

func deployBody(t *testing.T, manifest string, module []byte) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"manifest": json.RawMessage(manifest), "module": base64.StdEncoding.EncodeToString(module)})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type handlerStatus struct {
	Name, Version, State string
	Position             uint64
	Size                 int
}

func decodeStatus(t *testing.T, r reply) handlerStatus {
	t.Helper()
	var st handlerStatus
	if err := json.Unmarshal([]byte(r.body), &st); err != nil {
		t.Fatalf("status body %q: %v", r.body, err)
	}
	return st
}

func TestHandlersAPI(t *testing.T) {
	srv := newHandlerServer(t)
	wasm := trivialModule(t)
	const man = `{"name":"trivial","version":"1","triggers":[{"events":["telemetry"]}]}`

	// Deploy as JSON.
	r := call(t, srv, "POST", "/handlers", deployBody(t, man, wasm), "Content-Type", "application/json")
	if r.status != 201 {
		t.Fatalf("deploy: %d %s", r.status, r.body)
	}
	if st := decodeStatus(t, r); st.Name != "trivial" || st.Version != "1" || st.State != "active" || st.Size != len(wasm) {
		t.Fatalf("deploy status %+v", st)
	}

	// Roll to version 2 with a multipart upload.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("manifest", `{"name":"trivial","version":"2","triggers":[{"events":["telemetry"]}]}`)
	fw, _ := mw.CreateFormFile("module", "trivial.wasm")
	fw.Write(wasm)
	mw.Close()
	r = call(t, srv, "POST", "/handlers", body.String(), "Content-Type", mw.FormDataContentType())
	if r.status != 201 {
		t.Fatalf("roll: %d %s", r.status, r.body)
	}
	if st := decodeStatus(t, r); st.Version != "2" {
		t.Fatalf("rolled to version %q, want 2", st.Version)
	}

	r = call(t, srv, "GET", "/handlers", "")
	var list struct{ Value []handlerStatus }
	if err := json.Unmarshal([]byte(r.body), &list); r.status != 200 || err != nil || len(list.Value) != 1 || list.Value[0].Version != "2" {
		t.Fatalf("list: %d %s", r.status, r.body)
	}

	r = call(t, srv, "POST", "/handlers/trivial/disable", "")
	if r.status != 204 {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	if st := decodeStatus(t, call(t, srv, "GET", "/handlers/trivial", "")); st.State != "disabled" {
		t.Fatalf("after disable: state %q", st.State)
	}

	r = call(t, srv, "DELETE", "/handlers/trivial", "")
	if r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := call(t, srv, "GET", "/handlers/trivial", ""); r.status != 404 || errCode(t, r) != "HandlerNotFound" {
		t.Fatalf("get after delete: %d %s", r.status, r.body)
	}
}

func TestHandlersAPIErrors(t *testing.T) {
	srv := newHandlerServer(t)
	wasm := trivialModule(t)
	const man = `{"name":"h","triggers":[{"events":["telemetry"]}]}`
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"not JSON", "POST", "/handlers", `{"manifest":`, 400, "InvalidArgument"},
		{"bad base64", "POST", "/handlers", `{"manifest":` + man + `,"module":"%%%"}`, 400, "InvalidArgument"},
		{"no module", "POST", "/handlers", `{"manifest":` + man + `}`, 400, "InvalidArgument"},
		{"not wasm", "POST", "/handlers", deployBody(t, man, []byte("not a module")), 400, "InvalidModule"},
		{"truncated module", "POST", "/handlers", deployBody(t, man, wasm[:len(wasm)/2]), 400, "InvalidModule"},
		{"no name", "POST", "/handlers", deployBody(t, `{"triggers":[{"events":["telemetry"]}]}`, wasm), 400, ""},
		{"unknown event", "POST", "/handlers", deployBody(t, `{"name":"h","triggers":[{"events":["nope"]}]}`, wasm), 400, ""},
		{"get unknown", "GET", "/handlers/nope", "", 404, "HandlerNotFound"},
		{"disable unknown", "POST", "/handlers/nope/disable", "", 404, "HandlerNotFound"},
		{"delete unknown", "DELETE", "/handlers/nope", "", 404, "HandlerNotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, srv, tt.method, tt.path, tt.body, "Content-Type", "application/json")
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if code := errCode(t, r); tt.code != "" && code != tt.code {
				t.Fatalf("code %q, want %q", code, tt.code)
			}
		})
	}
	// Nothing was deployed.
	r := call(t, srv, "GET", "/handlers", "")
	if r.status != 200 || r.body != `{"value":[]}`+"\n" && r.body != `{"value":[]}` {
		t.Fatalf("list after rejected deploys: %d %q", r.status, r.body)
	}
}

// TestHandlerDeployGrants checks that deploying a handler never gives it
// more than its deployer may give: a handler-admin may deploy a handler
// that reads only if it may read itself, and an owner may give any role.
func TestHandlerDeployGrants(t *testing.T) {
	ctx := context.Background()
	g, store, keys, eng := newAuthEngine(t)
	svc := twins.New(eng, g, twins.Options{})
	m, err := handlers.New(eng, svc, handlers.Options{Grants: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v, err := authn.NewVerifier(authn.Config{Issuers: []*authn.Issuer{{Issuer: "dev", HS256Secret: authSecret}}, Audience: "twinlog"})
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(httpapi.Config{Engine: eng, Token: token, MaxBodyBytes: 64 << 20})
	api.RegisterTwins(svc)
	api.RegisterAuth(&httpapi.Auth{Verifier: v, Keys: keys, Grants: store, Graph: g})
	api.RegisterHandlers(m)
	srv := serveNode(t, api)
	defer srv.Close()
	for _, gr := range []struct{ principal, role string }{
		{"user:h", "handler-admin"}, {"user:hr", "handler-admin"}, {"user:hr", "reader"}, {"user:own", "owner"},
	} {
		mustStatus(t, call(t, srv, "POST", "/grants", `{"principal":"`+gr.principal+`","role":"`+gr.role+`","scope":{"kind":"instance"}}`), 201)
	}
	wasm := trivialModule(t)
	deploy := func(sub, grants string) reply {
		man := `{"name":"trivial","triggers":[{"events":["telemetry"]}],"grants":` + grants + `}`
		return call(t, srv, "POST", "/handlers", deployBody(t, man, wasm), "Authorization", "Bearer "+jwtFor(t, sub, nil, nil))
	}
	reader := `[{"role":"reader","scope":{"kind":"instance"}}]`
	writer := `[{"role":"writer","scope":{"kind":"model","model":"dtmi:t:Room;1"}}]`
	for _, c := range []struct {
		sub, grants string
		status      int
		code        string
	}{
		{"h", reader, 403, "Forbidden"},
		{"hr", writer, 403, "Forbidden"},
		{"hr", `[]`, 400, "InvalidManifest"},
		{"hr", `[{"role":"king","scope":{"kind":"instance"}}]`, 400, "InvalidManifest"},
		{"hr", reader, 201, ""},
		{"own", writer, 201, ""},
	} {
		r := deploy(c.sub, c.grants)
		if r.status != c.status || c.code != "" && !strings.Contains(r.body, `"code":"`+c.code+`"`) {
			t.Errorf("%s deploying with grants %s: %d %s, want %d %s", c.sub, c.grants, r.status, r.body, c.status, c.code)
		}
	}
	if gs := store.GrantsOf(authz.HandlerPrincipal("trivial")); len(gs) != 1 || gs[0].Role != authz.Writer || gs[0].CreatedBy != "user:own" {
		t.Fatalf("the handler's grants: %+v", gs)
	}
}
