package routes_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/httpapi"
	"github.com/twinlog/twinlog/processors/routes"
)

func TestRoutesAPI(t *testing.T) {
	e := newEnv(t, 0)
	r := e.router(routes.Options{})
	api := httpapi.New(httpapi.Config{Engine: e.eng, AllowAnonymous: true})
	api.RegisterRoutes(r)
	srv := httptest.NewServer(api)
	defer srv.Close()
	for _, tc := range []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"PUT", "/endpoints/hook", `{"endpointType":"webhook","url":"http://127.0.0.1:1/x"}`, 204, ""},
		{"PUT", "/endpoints/bad", `{"endpointType":"kafka"}`, 400, "InvalidArgument"},
		{"PUT", "/eventroutes/r1", `{"endpointName":"hook","filter":"type = 'Microsoft.DigitalTwins.Twin.Create'"}`, 204, ""},
		{"PUT", "/eventroutes/r2", `{"endpointName":"hook","filter":"type = "}`, 400, "EventRouteFilterInvalid"},
		{"PUT", "/eventroutes/r3", `{"endpointName":"nope","filter":"true"}`, 400, "EventRouteEndpointInvalid"},
		{"GET", "/eventroutes", "", 200, `"endpointName":"hook"`},
		{"GET", "/eventroutes/r1", "", 200, `"filter":"type = 'Microsoft.DigitalTwins.Twin.Create'"`},
		{"GET", "/eventroutes/zz", "", 404, "EventRouteNotFound"},
		{"GET", "/endpoints", "", 200, `"name":"hook"`},
		{"DELETE", "/endpoints/hook", "", 409, "EndpointInUse"},
		{"GET", "/eventroutes/r1/deadletters", "", 200, `"value":[]`},
		{"DELETE", "/eventroutes/r1", "", 204, ""},
		{"DELETE", "/endpoints/hook", "", 204, ""},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.contains) {
			t.Fatalf("%s %s: %d %s, want %d containing %s", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.contains)
		}
	}
}
