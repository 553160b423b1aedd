package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/httpapi"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// BenchmarkHandler measures the HTTP layer in process (no sockets): routing,
// authentication, api-version check, the service call and the response.
func BenchmarkHandler(b *testing.B) {
	g := twingraph.New(twingraph.Options{})
	eng, err := engine.New(memlog.New(memlog.Options{}), engine.Options{}, g)
	if err != nil {
		b.Fatal(err)
	}
	if err := eng.Start(context.Background(), nil); err != nil {
		b.Fatal(err)
	}
	defer eng.Stop()
	api := httpapi.New(httpapi.Config{Engine: eng, Token: token})
	api.RegisterTwins(twins.New(eng, g, twins.Options{}))
	serve := func(method, path, body string) int {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		return rec.Code
	}
	serve("POST", "/models", roomModel)
	const n = 1000
	for i := 0; i < n; i++ {
		if c := serve("PUT", fmt.Sprintf("/digitaltwins/r%d", i), `{"$metadata":{"$model":"dtmi:ex:Room;1"},"temperature":20}`); c != http.StatusOK {
			b.Fatalf("PUT: %d", c)
		}
	}
	b.Run("op=get", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if c := serve("GET", fmt.Sprintf("/digitaltwins/r%d?api-version=2022-05-31", i%n), ""); c != http.StatusOK {
					b.Errorf("GET: %d", c)
					return
				}
				i++
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
	})
	b.Run("op=patch", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if c := serve("PATCH", fmt.Sprintf("/digitaltwins/r%d?api-version=2022-05-31", i%n),
					`[{"op":"replace","path":"/temperature","value":21.5}]`); c != http.StatusNoContent {
					b.Errorf("PATCH: %d", c)
					return
				}
				i++
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "patches/s")
	})
}
