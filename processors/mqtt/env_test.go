package mqtt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/filelog"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/devices"
	"github.com/twinlog/twinlog/processors/ingest"
	"github.com/twinlog/twinlog/processors/mqtt"
	"github.com/twinlog/twinlog/projections/twingraph"
)

type env struct {
	log eventlog.Log
	eng *engine.Engine
	g   *twingraph.Graph
	svc *twins.Service
	in  *ingest.Ingester
	reg *devices.Registry
	gw  *mqtt.Gateway
	brk *mqtt.Broker
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return quiet
}

// newEnv starts an engine over a durable file log with the test models, a
// device registry, a gateway and, when broker is set, the embedded broker
// on a loopback port.
func newEnv(t testing.TB, broker bool, opts ingest.Options) *env {
	t.Helper()
	fl, err := filelog.Open(filepath.Join(t.TempDir(), "log"), filelog.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fl.Close() })
	g := twingraph.New(twingraph.Options{})
	eng, err := engine.New(fl, engine.Options{Logger: quiet}, g)
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
	if err := json.Unmarshal(data, &docs); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := svc.AddModels(ctx, "test", docs); err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(eng, g, opts)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := devices.Open(ctx, fl, svc, devices.Options{CommandTimeout: 5 * time.Second, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	in.SetDevices(reg)
	gw, err := mqtt.NewGateway(reg, in, svc, mqtt.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{log: fl, eng: eng, g: g, svc: svc, in: in, reg: reg, gw: gw}
	if broker {
		b, err := mqtt.NewBroker(gw, mqtt.BrokerOptions{Listen: "127.0.0.1:0", Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		reg.SetSender(b)
		reg.SetDisconnector(b)
		e.brk = b
		t.Cleanup(func() { b.Close() })
	}
	t.Cleanup(func() { gw.Close() })
	return e
}

// register registers a device and returns its key.
func (e *env) register(t testing.TB, id string, req devices.PutRequest) string {
	t.Helper()
	_, key, created, err := e.reg.Put(context.Background(), "test", id, req)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatalf("device %s: created=false, want true", id)
	}
	return key
}

// connect connects a paho client to addr as a device.
func connect(t testing.TB, addr, id, key string) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetUsername(id).SetPassword(key).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).SetCleanSession(true)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect %s: timeout", id)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

// points returns every telemetry point in the log, in order.
func (e *env) points(t testing.TB) []twingraph.TelemetryPoint {
	t.Helper()
	ctx := context.Background()
	var out []twingraph.TelemetryPoint
	for from := uint64(1); ; {
		evs, err := e.log.Read(ctx, from, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return out
		}
		for i := range evs {
			ev := &evs[i]
			switch ev.Type {
			case twingraph.TypeTelemetry:
				var p twingraph.Telemetry
				if err := twingraph.Decode(ev, &p); err != nil {
					t.Fatal(err)
				}
				out = append(out, twingraph.TelemetryPoint{Twin: p.Twin, Component: p.Component, MessageID: p.MessageID, SourceTime: p.SourceTime, Body: p.Body})
			case twingraph.TypeTelemetryBatch:
				err := twingraph.DecodeTelemetryBatch(ev.Payload, func(_ int, p *twingraph.TelemetryPoint) error {
					q := *p
					q.Body = append([]byte(nil), p.Body...)
					out = append(out, q)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		from = evs[len(evs)-1].Position + 1
	}
}
