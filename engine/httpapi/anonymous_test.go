package httpapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/authz"
	"github.com/twinlog/twinlog/engine/httpapi"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/projections/graphquery"
)

// TestAnonymousRole checks that where access control is on, anonymous
// callers hold the configured role and the grants made to "anonymous",
// nothing more; and that the audit log finds a handler's writes by its
// principal.
func TestAnonymousRole(t *testing.T) {
	for _, c := range []struct {
		role                authz.Role
		getR1, getR2, putR2 int
		countR1R2           int
	}{
		{"", 200, 404, 403, 1},
		{authz.Reader, 200, 200, 403, 2},
		{authz.Owner, 200, 200, 200, 2},
	} {
		t.Run("role="+string(c.role), func(t *testing.T) {
			g, store, keys, eng := newAuthEngine(t)
			svc := twins.New(eng, g, twins.Options{})
			api := httpapi.New(httpapi.Config{Engine: eng, Token: token, AllowAnonymous: true, AnonymousRole: c.role})
			api.RegisterTwins(svc)
			api.RegisterQuery(graphquery.New(g, graphquery.Options{}))
			api.RegisterAuth(&httpapi.Auth{Keys: keys, Grants: store, Graph: g})
			srv := serveNode(t, api)
			defer srv.Close()
			admin := func(method, path, body string) reply {
				return call(t, srv, method, path, body, "Authorization", "Bearer "+token)
			}
			mustStatus(t, admin("POST", "/models", authModels), 201)
			for _, id := range []string{"R1", "R2"} {
				mustStatus(t, admin("PUT", "/digitaltwins/"+id, `{"$metadata":{"$model":"dtmi:t:Room;1"},"name":"`+id+`"}`), 200)
			}
			mustStatus(t, admin("POST", "/grants", `{"principal":"anonymous","role":"reader","scope":{"kind":"twins","twins":["R1"]}}`), 201)

			anon := func(method, path, body string) reply { return call(t, srv, method, path, body, "Authorization", "") }
			for _, x := range []struct {
				method, path, body string
				want               int
			}{
				{"GET", "/digitaltwins/R1", "", c.getR1},
				{"GET", "/digitaltwins/R2", "", c.getR2},
				{"PUT", "/digitaltwins/R2", `{"$metadata":{"$model":"dtmi:t:Room;1"},"name":"x"}`, c.putR2},
			} {
				if r := anon(x.method, x.path, x.body); r.status != x.want {
					t.Errorf("anonymous %s %s: %d %s, want %d", x.method, x.path, r.status, r.body, x.want)
				}
			}
			r := anon("POST", "/query", `{"query":"SELECT COUNT() FROM DIGITALTWINS"}`)
			if want := `"COUNT":` + string(rune('0'+c.countR1R2)); r.status != 200 || !strings.Contains(r.body, want) {
				t.Errorf("anonymous count: %d %s, want %s", r.status, r.body, want)
			}

			// A handler's writes carry its version and cause after its
			// principal; the audit log finds them by the principal.
			if _, err := svc.PatchTwin(context.Background(), "handler:comfort@1;c=3.0;h=1;p=ab", "R1", []byte(`[{"op":"replace","path":"/name","value":"y"}]`), twins.Cond{}); err != nil {
				t.Fatal(err)
			}
			if r := admin("GET", "/audit?principal=handler:comfort", ""); r.status != 200 || !strings.Contains(r.body, "handler:comfort@1") {
				t.Errorf("audit of handler:comfort: %d %s", r.status, r.body)
			}
			if r := admin("GET", "/audit?principal=handler:comf", ""); r.status != 200 || strings.Contains(r.body, "handler:comfort@1") {
				t.Errorf("audit of handler:comf: %d %s", r.status, r.body)
			}
		})
	}
}
