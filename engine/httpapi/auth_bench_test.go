package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/authn"
	"github.com/twinlog/twinlog/engine/authz"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/httpapi"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// authAPI returns an API with access control over a memory log, a way to
// serve a request on a connection (its context, from newConn), and newConn.
// Each connection has its caller slot, as a node's do.
func authAPI(tb testing.TB) (serveOn func(conn context.Context, tok, method, path, body string) (int, string), newConn func() context.Context) {
	tb.Helper()
	g := twingraph.New(twingraph.Options{})
	store := authz.New(authz.Options{Models: func() authz.ModelChecker { return g.Snapshot().Models() }})
	keys := authn.NewKeys()
	eng, err := engine.New(memlog.New(memlog.Options{}), engine.Options{}, g, store, keys)
	if err != nil {
		tb.Fatal(err)
	}
	if err := eng.Start(context.Background(), nil); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(eng.Stop)
	v, _ := authn.NewVerifier(authn.Config{Issuers: []*authn.Issuer{{Issuer: "dev", HS256Secret: authSecret}}, Audience: "twinlog"})
	api := httpapi.New(httpapi.Config{Engine: eng, Token: token})
	api.RegisterTwins(twins.New(eng, g, twins.Options{}))
	api.RegisterQuery(graphquery.New(g, graphquery.Options{}))
	api.RegisterAuth(&httpapi.Auth{Verifier: v, Keys: keys, Grants: store, Graph: g})
	serveOn = func(conn context.Context, tok, method, path, body string) (int, string) {
		req := httptest.NewRequestWithContext(conn, method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	return serveOn, func() context.Context { return api.ConnContext(context.Background(), nil) }
}

// BenchmarkAuthz compares GET twin and a query as the admin (no grant
// checks) with the same requests by an API key holding a subtree grant and
// by a JWT holding a model grant, in one run.
func BenchmarkAuthz(b *testing.B) {
	serveOn, newConn := authAPI(b)
	setup := newConn()
	serve := func(tok, method, path, body string) (int, string) { return serveOn(setup, tok, method, path, body) }
	serve(token, "POST", "/models", authModels)
	const n = 1000
	serve(token, "PUT", "/digitaltwins/root", `{"$metadata":{"$model":"dtmi:t:Building;1"}}`)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("r%d", i)
		if c, body := serve(token, "PUT", "/digitaltwins/"+id, `{"$metadata":{"$model":"dtmi:t:Room;1"},"name":"x"}`); c != http.StatusOK {
			b.Fatalf("PUT: %d %s", c, body)
		}
		serve(token, "PUT", "/digitaltwins/root/relationships/c"+id, fmt.Sprintf(`{"$targetId":%q,"$relationshipName":"contains"}`, id))
	}
	_, body := serve(token, "POST", "/apikeys", `{}`)
	var key struct{ Key, Principal string }
	json.Unmarshal([]byte(body), &key)
	serve(token, "POST", "/grants", fmt.Sprintf(`{"principal":%q,"role":"reader","scope":{"kind":"subtree","root":"root","relationships":["contains"]}}`, key.Principal))
	serve(token, "POST", "/grants", `{"principal":"group:rooms","role":"reader","scope":{"kind":"model","model":"dtmi:t:Space;1"}}`)
	jwtTok := jwtFor(b, "alice", []string{"rooms"}, nil)
	for _, who := range []struct{ name, tok string }{{"admin", token}, {"apikey-subtree", key.Key}, {"jwt-model", jwtTok}} {
		b.Run("op=get/who="+who.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				conn := newConn()
				i := 0
				for pb.Next() {
					if c, _ := serveOn(conn, who.tok, "GET", fmt.Sprintf("/digitaltwins/r%d?api-version=2022-05-31", i%n), ""); c != http.StatusOK {
						b.Errorf("GET: %d", c)
						return
					}
					i++
				}
			})
		})
		b.Run("op=lookup/who="+who.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				q := fmt.Sprintf(`{"query":"SELECT * FROM DIGITALTWINS T WHERE T.$dtId = 'r%d'"}`, i%n)
				if c, body := serve(who.tok, "POST", "/query", q); c != http.StatusOK || !strings.Contains(body, `"$dtId"`) {
					b.Fatalf("lookup: %d %s", c, body)
				}
				i++
			}
		})
		b.Run("op=query/who="+who.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if c, body := serve(who.tok, "POST", "/query", `{"query":"SELECT COUNT() FROM DIGITALTWINS T WHERE T.name = 'x'"}`); c != http.StatusOK || !strings.Contains(body, `"COUNT":1000`) {
					b.Fatalf("query: %d %s", c, body)
				}
			}
		})
	}
}
