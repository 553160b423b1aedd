package routes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog/filelog"
	"github.com/twinlog/twinlog/processors/routes"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// countingHook is a minimal local webhook that counts CloudEvents and
// records the latency carried in each event's data ({"sent": unix-nanos}).
type countingHook struct {
	n    atomic.Int64
	mu   sync.Mutex
	lats []time.Duration
	url  string
	srv  *http.Server
}

func newCountingHook(b *testing.B, latency bool) *countingHook {
	h := &countingHook{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	h.url = "http://" + ln.Addr().String()
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		now := time.Now().UnixNano()
		if r.Header.Get("Content-Type") == "application/cloudevents-batch+json" {
			if latency {
				var ces []struct{ Data struct{ Sent int64 } }
				json.Unmarshal(body, &ces)
				h.mu.Lock()
				for _, ce := range ces {
					h.lats = append(h.lats, time.Duration(now-ce.Data.Sent))
				}
				h.mu.Unlock()
			}
			h.n.Add(int64(bytes.Count(body, []byte(`"specversion"`))))
		} else {
			h.n.Add(1)
			if latency {
				var ce struct{ Data struct{ Sent int64 } }
				json.Unmarshal(body, &ce)
				h.mu.Lock()
				h.lats = append(h.lats, time.Duration(now-ce.Data.Sent))
				h.mu.Unlock()
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go h.srv.Serve(ln)
	b.Cleanup(func() { h.srv.Close() })
	return h
}

func telemetryEvent(b *testing.B, twin string, seq int, sent int64) event.Event {
	ev, err := twingraph.NewEvent(twingraph.TelemetryStream(twin), twingraph.TypeTelemetry, "bench",
		&twingraph.Telemetry{Twin: twin, MessageID: twin + "-" + strconv.Itoa(seq), Body: json.RawMessage(fmt.Sprintf(`{"sent":%d,"co2":%d}`, sent, seq))})
	if err != nil {
		b.Fatal(err)
	}
	return ev
}

func benchRouter(b *testing.B, sync bool, ep routes.Endpoint) (*routes.Router, *filelog.Log) {
	l, err := filelog.Open(filepath.Join(b.TempDir(), "log"), filelog.Options{NoSync: !sync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	r := routes.New(l, routes.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CheckpointEvery: 100 * time.Millisecond})
	if err := r.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.Stop)
	ctx := context.Background()
	if err := r.PutEndpoint(ctx, "", ep); err != nil {
		b.Fatal(err)
	}
	if err := r.PutRoute(ctx, "", routes.Route{ID: "r", EndpointName: ep.Name, Filter: "type = 'microsoft.iot.telemetry'"}); err != nil {
		b.Fatal(err)
	}
	return r, l
}

// BenchmarkWebhookDelivery measures route throughput: b.N telemetry events
// appended in batches of 1,000, delivered to a local webhook.
func BenchmarkWebhookDelivery(b *testing.B) {
	for _, mode := range []string{routes.ModeBatch, routes.ModeStructured} {
		b.Run("mode="+mode, func(b *testing.B) {
			hook := newCountingHook(b, false)
			_, l := benchRouter(b, false, routes.Endpoint{Name: "hook", Kind: routes.KindWebhook, URL: hook.url, Mode: mode, Concurrency: 16})
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i += 1000 {
				batch := make([]event.Event, 0, 1000)
				for j := i; j < min(i+1000, b.N); j++ {
					batch = append(batch, telemetryEvent(b, "s"+strconv.Itoa(j%1000), j, 0))
				}
				if _, err := l.Append(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			for hook.n.Load() < int64(b.N) {
				time.Sleep(time.Millisecond)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkTelemetryToWebhookLatency appends telemetry at 10,000 events/s
// (10 events per millisecond, durable) and measures the time from the
// append call to the webhook receiving the CloudEvent.
func BenchmarkTelemetryToWebhookLatency(b *testing.B) {
	for _, mode := range []string{routes.ModeBatch, routes.ModeStructured} {
		b.Run("mode="+mode, func(b *testing.B) { benchLatency(b, mode) })
	}
}

func benchLatency(b *testing.B, mode string) {
	hook := newCountingHook(b, true)
	_, l := benchRouter(b, true, routes.Endpoint{Name: "hook", Kind: routes.KindWebhook, URL: hook.url, Mode: mode, Concurrency: 16})
	const perTick = 10
	b.ResetTimer()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	sent := 0
	for sent < b.N {
		<-tick.C
		now := time.Now().UnixNano()
		batch := make([]event.Event, 0, perTick)
		for j := 0; j < perTick && sent < b.N; j++ {
			batch = append(batch, telemetryEvent(b, "s"+strconv.Itoa(sent%1000), sent, now))
			sent++
		}
		go l.Append(context.Background(), batch) // appenders do not wait for each other
	}
	for hook.n.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	hook.mu.Lock()
	lats := slices.Clone(hook.lats)
	hook.mu.Unlock()
	slices.Sort(lats)
	b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds()), "p99-us")
	b.ReportMetric(float64(lats[len(lats)/2].Microseconds()), "p50-us")
}
