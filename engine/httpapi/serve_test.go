package httpapi_test

import (
	"net/http/httptest"
	"testing"

	"github.com/twinlog/twinlog/engine/httpapi"
	"github.com/twinlog/twinlog/engine/httpserve"
)

// serveNode serves api as a node does: with the node's HTTP/1.1 server and
// the API's connection slots. The returned value only carries the URL and
// listener; closing it stops the listener, and the test's end the rest.
func serveNode(t *testing.T, api *httpapi.Server) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(api)
	ts.URL = "http://" + ts.Listener.Addr().String()
	s := &httpserve.Server{Handler: api, ConnContext: api.ConnContext}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ts.Listener) }()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return ts
}
