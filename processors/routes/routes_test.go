package routes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/filelog"
	"github.com/twinlog/twinlog/engine/eventlog/natslog/natstest"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/routes"
	"github.com/twinlog/twinlog/projections/twingraph"
)

type env struct {
	t   testing.TB
	log eventlog.Log
	eng *engine.Engine
	g   *twingraph.Graph
	svc *twins.Service
}

func newEnv(t testing.TB, nTwins int) *env {
	t.Helper()
	l, err := filelog.Open(filepath.Join(t.TempDir(), "log"), filelog.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	g := twingraph.New(twingraph.Options{})
	eng, err := engine.New(l, engine.Options{}, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Stop)
	svc := twins.New(eng, g, twins.Options{})
	data, err := os.ReadFile("testdata/models.json")
	if err != nil {
		t.Fatal(err)
	}
	var docs []json.RawMessage
	json.Unmarshal(data, &docs)
	ctx := context.Background()
	if _, err := svc.AddModels(ctx, "test", docs); err != nil {
		t.Fatal(err)
	}
	for i := range nTwins {
		body := `{"$metadata":{"$model":"dtmi:test:Sensor;1"},"hvac":{"$metadata":{}}}`
		if _, _, err := svc.PutTwin(ctx, "test", fmt.Sprintf("s%d", i), []byte(body), twins.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	return &env{t: t, log: l, eng: eng, g: g, svc: svc}
}

func (e *env) router(opts routes.Options) *routes.Router {
	opts.Models = routes.ModelsOf(e.g)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := routes.New(e.log, opts)
	if err := r.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(r.Stop)
	return r
}

func (e *env) telemetry(twin string, seq int) {
	e.t.Helper()
	body := fmt.Sprintf(`{"co2":%d}`, seq)
	if err := e.svc.SendTelemetry(context.Background(), "test", twin, "", fmt.Sprintf("%s-%d", twin, seq), "", []byte(body)); err != nil {
		e.t.Fatal(err)
	}
}

// receiver is a webhook that can be stopped and restarted on one address.
type receiver struct {
	t    testing.TB
	addr string
	mu   sync.Mutex
	got  []routes.CloudEvent
	srv  *http.Server
}

func newReceiver(t testing.TB) *receiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, addr: ln.Addr().String()}
	r.serve(ln)
	t.Cleanup(r.stop)
	return r
}

func (r *receiver) url() string { return "http://" + r.addr + "/hook" }

func (r *receiver) serve(ln net.Listener) {
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var evs []routes.CloudEvent
		switch req.Header.Get("Content-Type") {
		case "application/cloudevents-batch+json":
			json.Unmarshal(b, &evs)
		case "application/cloudevents+json; charset=utf-8":
			var ce routes.CloudEvent
			json.Unmarshal(b, &ce)
			evs = append(evs, ce)
		default: // binary mode
			evs = append(evs, routes.CloudEvent{ID: req.Header.Get("ce-id"), Type: req.Header.Get("ce-type"),
				Source: req.Header.Get("ce-source"), Subject: req.Header.Get("ce-subject"), Data: b})
		}
		r.mu.Lock()
		r.got = append(r.got, evs...)
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go r.srv.Serve(ln)
}

func (r *receiver) stop() { r.srv.Close() }

func (r *receiver) restart() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	r.serve(ln)
}

func (r *receiver) events() []routes.CloudEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]routes.CloudEvent(nil), r.got...)
}

// waitFor polls until cond holds or 20 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// checkTelemetry checks that every twin's telemetry seq 0..n-1 arrived and
// first arrivals are in order (duplicates are allowed: at least once).
func checkTelemetry(t testing.TB, evs []routes.CloudEvent, twinsN, n int) {
	t.Helper()
	next := map[string]int{}
	for _, ce := range evs {
		if ce.Type != routes.TypeTelemetry {
			continue
		}
		var body struct{ CO2 int }
		json.Unmarshal(ce.Data, &body)
		twin := ce.Source[len("twinlog.local/digitaltwins/"):]
		switch {
		case body.CO2 == next[twin]:
			next[twin]++
		case body.CO2 > next[twin]:
			t.Fatalf("twin %s: got seq %d before %d", twin, body.CO2, next[twin])
		}
	}
	for i := range twinsN {
		if got := next[fmt.Sprintf("s%d", i)]; got != n {
			t.Fatalf("twin s%d: %d of %d events arrived", i, got, n)
		}
	}
}

func TestWebhookReceiverDownThenUp(t *testing.T) {
	for _, mode := range []string{routes.ModeStructured, routes.ModeBinary, routes.ModeBatch} {
		t.Run("mode="+mode, func(t *testing.T) {
			e := newEnv(t, 3)
			rcv := newReceiver(t)
			r := e.router(routes.Options{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, CheckpointEvery: 10 * time.Millisecond})
			ctx := context.Background()
			if err := r.PutEndpoint(ctx, "", routes.Endpoint{Name: "hook", Kind: routes.KindWebhook, URL: rcv.url(), Mode: mode}); err != nil {
				t.Fatal(err)
			}
			if err := r.PutRoute(ctx, "", routes.Route{ID: "all-telemetry", EndpointName: "hook", Filter: "type = 'microsoft.iot.telemetry'"}); err != nil {
				t.Fatal(err)
			}
			const n = 30
			for seq := range n {
				if seq == 10 {
					rcv.stop()
				}
				if seq == 20 {
					time.Sleep(300 * time.Millisecond) // several failed attempts
					rcv.restart()
				}
				for i := range 3 {
					e.telemetry(fmt.Sprintf("s%d", i), seq)
				}
			}
			waitFor(t, "all telemetry at the webhook", func() bool { return len(rcv.events()) >= 3*n })
			checkTelemetry(t, rcv.events(), 3, n)
			found := false
			for _, ce := range rcv.events() {
				if ce.ID == "s0-0" {
					found = true
					if ce.Type != routes.TypeTelemetry || ce.Source != "twinlog.local/digitaltwins/s0" || string(ce.Data) != `{"co2":0}` {
						t.Fatalf("event s0-0 = %+v", ce)
					}
				}
			}
			if !found {
				t.Fatal("no event with id s0-0 (the Message-Id)")
			}
		})
	}
}

func TestRestartResumesFromCursor(t *testing.T) {
	e := newEnv(t, 2)
	rcv := newReceiver(t)
	opts := routes.Options{CheckpointEvery: time.Millisecond}
	r := e.router(opts)
	ctx := context.Background()
	r.PutEndpoint(ctx, "", routes.Endpoint{Name: "hook", Kind: routes.KindWebhook, URL: rcv.url()})
	if err := r.PutRoute(ctx, "", routes.Route{ID: "t", EndpointName: "hook", Filter: "type = 'microsoft.iot.telemetry'"}); err != nil {
		t.Fatal(err)
	}
	for seq := range 10 {
		e.telemetry("s0", seq)
		e.telemetry("s1", seq)
	}
	waitFor(t, "first half", func() bool { return len(rcv.events()) >= 20 })
	r.Stop()
	for seq := 10; seq < 20; seq++ {
		e.telemetry("s0", seq)
		e.telemetry("s1", seq)
	}
	r2 := e.router(opts)
	waitFor(t, "second half after restart", func() bool { return len(rcv.events()) >= 40 })
	time.Sleep(50 * time.Millisecond)
	checkTelemetry(t, rcv.events(), 2, 20)
	if n := len(rcv.events()); n > 44 {
		t.Fatalf("%d events delivered for 40: the restart did not resume from the cursor", n)
	}
	_ = r2
}

func TestDeadLetterAndRedrive(t *testing.T) {
	e := newEnv(t, 1)
	var (
		mu   sync.Mutex
		fail = true
		got  int
	)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got++
		w.WriteHeader(http.StatusOK)
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	r := e.router(routes.Options{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	ctx := context.Background()
	if err := r.PutEndpoint(ctx, "", routes.Endpoint{Name: "down", Kind: routes.KindWebhook, URL: "http://" + ln.Addr().String(), DeadLetterAfter: "200ms"}); err != nil {
		t.Fatal(err)
	}
	if err := r.PutRoute(ctx, "", routes.Route{ID: "r", EndpointName: "down", Filter: "true"}); err != nil {
		t.Fatal(err)
	}
	e.telemetry("s0", 1)
	var dls []routes.DeadLetter
	waitFor(t, "a dead letter", func() bool {
		dls, _ = r.DeadLetters(ctx, "r")
		return len(dls) > 0
	})
	if dls[0].Events[0].Type != routes.TypeTelemetry || dls[0].Reason == "" {
		t.Fatalf("dead letter = %+v", dls[0])
	}
	// Delivery went on after the dead letter.
	e.telemetry("s0", 2)
	mu.Lock()
	fail = false
	mu.Unlock()
	waitFor(t, "later events delivered", func() bool { mu.Lock(); defer mu.Unlock(); return got >= 1 })
	if err := r.Redrive(ctx, "admin", "r", dls[0].Position); err != nil {
		t.Fatal(err)
	}
	if dls, _ := r.DeadLetters(ctx, "r"); len(dls) != 0 {
		t.Fatalf("dead letters after redrive = %d, want 0", len(dls))
	}
	mu.Lock()
	defer mu.Unlock()
	if got < 2 {
		t.Fatalf("deliveries=%d, want >= 2", got)
	}
}

func TestNATSSubscriberGetsTwinEvents(t *testing.T) {
	e := newEnv(t, 0)
	ns := natstest.RunServer(t, natstest.Options{})
	nc, err := nats.Connect(ns.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msgs := make(chan *nats.Msg, 64)
	if _, err := nc.ChanSubscribe("twins.events", msgs); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	r := e.router(routes.Options{NATS: nc})
	ctx := context.Background()
	if err := r.PutEndpoint(ctx, "", routes.Endpoint{Name: "bus", Kind: routes.KindNATS, URL: ns.URL, Subject: "twins.events"}); err != nil {
		t.Fatal(err)
	}
	if err := r.PutRoute(ctx, "", routes.Route{ID: "lifecycle", EndpointName: "bus", Filter: "STARTS_WITH(type, 'Microsoft.DigitalTwins.Twin')"}); err != nil {
		t.Fatal(err)
	}
	body := `{"$metadata":{"$model":"dtmi:test:Sensor;1"},"name":"a","hvac":{"$metadata":{}}}`
	if _, _, err := e.svc.PutTwin(ctx, "u", "t1", []byte(body), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PatchTwin(ctx, "u", "t1", []byte(`[{"op":"replace","path":"/name","value":"b"}]`), twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	e.telemetry("t1", 1) // filtered out
	if err := e.svc.DeleteTwin(ctx, "u", "t1", twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	want := []string{routes.TypeTwinCreate, routes.TypeTwinUpdate, routes.TypeTwinDelete}
	for i, typ := range want {
		select {
		case m := <-msgs:
			var ce routes.CloudEvent
			if err := json.Unmarshal(m.Data, &ce); err != nil {
				t.Fatal(err)
			}
			if ce.Type != typ || ce.Subject != "t1" || ce.SpecVersion != "1.0" {
				t.Fatalf("event %d = %+v, want type %s", i, ce, typ)
			}
			if typ == routes.TypeTwinUpdate {
				var d struct {
					ModelID string `json:"modelId"`
					Patch   []map[string]any
				}
				json.Unmarshal(ce.Data, &d)
				if d.ModelID != "dtmi:test:Sensor;1" || len(d.Patch) != 1 || d.Patch[0]["value"] != "b" {
					t.Fatalf("Twin.Update data = %s", ce.Data)
				}
			}
			if typ == routes.TypeTwinCreate {
				var d map[string]any
				json.Unmarshal(ce.Data, &d)
				if d["$dtId"] != "t1" || d["name"] != "a" {
					t.Fatalf("Twin.Create data = %s", ce.Data)
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s on NATS", typ)
		}
	}
}
