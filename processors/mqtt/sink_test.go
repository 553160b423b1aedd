package mqtt_test

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/devices"
	"github.com/twinlog/twinlog/processors/ingest"
	"github.com/twinlog/twinlog/processors/mqtt"
	"github.com/twinlog/twinlog/processors/routes"
)

// TestRouteToMQTT routes twin lifecycle CloudEvents to an MQTT topic on
// the embedded broker and, when one runs, on the external broker at
// 127.0.0.1:1883.
func TestRouteToMQTT(t *testing.T) {
	e := newEnv(t, true, ingest.Options{})
	rt := routes.New(e.log, routes.Options{Models: routes.ModelsOf(e.g), Logger: quiet})
	rt.SetSinkMaker(mqtt.SinkMaker(e.brk))
	if err := rt.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer rt.Stop()

	type target struct{ name, url, addr, user, key string }
	key := e.register(t, "watcher", devices.PutRequest{})
	targets := []target{{name: "embedded", addr: e.brk.Addr(), user: "watcher", key: key}}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:1883", time.Second); err == nil {
		c.Close()
		targets = append(targets, target{name: "mosquitto", url: "tcp://127.0.0.1:1883", addr: "127.0.0.1:1883"})
	} else {
		t.Logf("no MQTT broker at 127.0.0.1:1883 (%v): only the embedded broker is tested", err)
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			topic := "devices/watcher/events"
			if tg.url != "" {
				topic = "twinlog-test/" + t.Name() + "/" + time.Now().Format("150405.000000")
			}
			got := make(chan map[string]any, 16)
			user := tg.user
			if user == "" { // the external broker: anonymous, a unique client id
				user = "twinlog-test-watcher-" + time.Now().Format("150405.000000")
			}
			sub, err := connect(t, tg.addr, user, tg.key)
			if err != nil {
				t.Fatal(err)
			}
			if tok := sub.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
				var ce map[string]any
				json.Unmarshal(m.Payload(), &ce)
				got <- ce
			}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("subscribe: %v", tok.Error())
			}
			ep := routes.Endpoint{Name: "mq-" + tg.name, Kind: routes.KindMQTT, URL: tg.url, Topic: topic}
			if err := rt.PutEndpoint(t.Context(), "test", ep); err != nil {
				t.Fatal(err)
			}
			if err := rt.PutRoute(t.Context(), "test", routes.Route{ID: "r-" + tg.name, EndpointName: ep.Name,
				Filter: "type = 'Microsoft.DigitalTwins.Twin.Create'"}); err != nil {
				t.Fatal(err)
			}
			twin := "routed-" + tg.name
			body := `{"$metadata":{"$model":"dtmi:test:Meter;1"}}`
			if _, _, err := e.svc.PutTwin(t.Context(), "test", twin, []byte(body), twins.Cond{}); err != nil {
				t.Fatal(err)
			}
			deadline := time.After(10 * time.Second)
			for {
				select {
				case ce := <-got:
					if ce["type"] == "Microsoft.DigitalTwins.Twin.Create" && ce["subject"] == twin {
						return
					}
				case <-deadline:
					t.Fatalf("no Twin.Create CloudEvent for %s on %s", twin, topic)
				}
			}
		})
	}
}
