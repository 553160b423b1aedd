package mqtt_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/processors/devices"
	"github.com/twinlog/twinlog/processors/ingest"
	"github.com/twinlog/twinlog/processors/mqtt"
)

// simulate makes c answer every command: reboot with {"delay": n} answers
// "rebooting in n"; "fail" answers status 500; "silent" never answers.
func simulate(t testing.TB, c paho.Client, dev string) {
	t.Helper()
	tok := c.Subscribe("devices/"+dev+"/commands/#", 1, func(c paho.Client, m paho.Message) {
		parts := strings.Split(m.Topic(), "/")
		if len(parts) != 6 || parts[4] != "req" {
			return
		}
		name, rid := parts[3], parts[5]
		switch name {
		case "reboot":
			var delay json.Number
			json.Unmarshal(m.Payload(), &delay)
			resp, _ := json.Marshal("rebooting in " + delay.String())
			c.Publish(mqtt.ResponseTopic(dev, name, rid, 0), 1, false, resp)
		case "fail":
			c.Publish(mqtt.ResponseTopic(dev, name, rid, 500), 1, false, `{"error":"broken"}`)
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
}

func TestCommandRoundTrip(t *testing.T) {
	e := newEnv(t, true, ingest.Options{})
	key := e.register(t, "dev1", devices.PutRequest{TwinID: "sensor1", ModelID: "dtmi:test:Sensor;1"})
	c, err := connect(t, e.brk.Addr(), "dev1", key)
	if err != nil {
		t.Fatal(err)
	}
	simulate(t, c, "dev1")
	resp, err := e.reg.Invoke(t.Context(), "sensor1", "reboot", []byte(`5`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 || string(resp.Payload) != `"rebooting in 5"` {
		t.Fatalf("response %d %s, want 200 \"rebooting in 5\"", resp.Status, resp.Payload)
	}
	tests := []struct {
		name, twin, cmd, payload, code string
	}{
		{"unknown command", "sensor1", "explode", "", "CommandNotFound"},
		{"bad request", "sensor1", "reboot", `"soon"`, "ValidationFailed"},
		{"unknown twin", "nope", "reboot", "1", "DigitalTwinNotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.reg.Invoke(t.Context(), tt.twin, tt.cmd, []byte(tt.payload), time.Second)
			if got := engine.AsError(err).Code; got != tt.code {
				t.Fatalf("code %q (%v), want %q", got, err, tt.code)
			}
		})
	}
	// A device that is offline, and one that does not answer.
	key2 := e.register(t, "dev2", devices.PutRequest{TwinID: "sensor2", ModelID: "dtmi:test:Sensor;1"})
	if _, err := e.reg.Invoke(t.Context(), "sensor2", "reboot", []byte("1"), time.Second); engine.AsError(err).Code != "DeviceNotOnline" {
		t.Fatalf("offline device: %v, want DeviceNotOnline", err)
	}
	c2, err := connect(t, e.brk.Addr(), "dev2", key2)
	if err != nil {
		t.Fatal(err)
	}
	_ = c2 // connected, subscribed to nothing: never answers
	// The broker registers the session just after the client sees its
	// CONNACK: wait until it counts the device as online.
	var start time.Time
	for deadline := time.Now().Add(5 * time.Second); ; {
		start = time.Now()
		_, err = e.reg.Invoke(t.Context(), "sensor2", "reboot", []byte("1"), 300*time.Millisecond)
		if engine.AsError(err).Code != "DeviceNotOnline" || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(err, devices.ErrCommandTimeout) {
		t.Fatalf("silent device: %v, want ErrCommandTimeout", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Fatalf("timed out after %v, want ~300ms", d)
	}
}

// TestAutoProvisioning: a device registered without a model is refused
// until it announces its model; then its twin exists with that model and
// its telemetry and reported properties land in it.
func TestAutoProvisioning(t *testing.T) {
	e := newEnv(t, true, ingest.Options{})
	key := e.register(t, "pnp1", devices.PutRequest{})
	if d, _ := e.reg.Get("pnp1"); d.Provisioned || d.TwinID != "pnp1" {
		t.Fatalf("registered device %+v, want unprovisioned with twin pnp1", d)
	}
	c, err := connect(t, e.brk.Addr(), "pnp1", key)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, c, mqtt.TelemetryTopic("pnp1"), 1, `{"temperature": 20}`)
	if n := len(e.points(t)); n != 0 {
		t.Fatalf("%d points before provisioning, want 0", n)
	}
	if _, ok := e.g.Snapshot().Twin("pnp1"); ok {
		t.Fatal("twin created without a model")
	}
	// The first message announcing the model provisions the device and
	// is itself accepted.
	publish(t, c, mqtt.TelemetryTopic("pnp1"), 1, `{"$model": "dtmi:test:Sensor;1", "temperature": 21}`)
	tw, ok := e.g.Snapshot().Twin("pnp1")
	if !ok || tw.Model != "dtmi:test:Sensor;1" {
		t.Fatalf("twin after announcement: %v %+v", ok, tw)
	}
	if d, _ := e.reg.Get("pnp1"); !d.Provisioned || d.ModelID != "dtmi:test:Sensor;1" {
		t.Fatalf("device %+v, want provisioned with the model", d)
	}
	pts := e.points(t)
	if len(pts) != 1 || string(pts[0].Body) != `{"temperature":21}` {
		t.Fatalf("points %+v, want the announcing point without $model", pts)
	}
	// Reported properties are written into the twin.
	publish(t, c, mqtt.ReportedTopic("pnp1"), 1, `{"firmware": "1.2.3", "name": "lobby"}`)
	body, _, err := e.svc.GetTwin(t.Context(), "pnp1")
	if err != nil {
		t.Fatal(err)
	}
	var twin map[string]any
	json.Unmarshal(body, &twin)
	if twin["firmware"] != "1.2.3" || twin["name"] != "lobby" {
		t.Fatalf("twin %s, want firmware and name reported", body)
	}
	// A reported property the model does not declare is rejected; the twin
	// is unchanged.
	publish(t, c, mqtt.ReportedTopic("pnp1"), 1, `{"colour": "red"}`)
	body2, _, _ := e.svc.GetTwin(t.Context(), "pnp1")
	if strings.Contains(string(body2), "colour") {
		t.Fatalf("undeclared property written: %s", body2)
	}
	// Announcing another model than the twin's is refused.
	publish(t, c, mqtt.TelemetryTopic("pnp1"), 1, `{"$model": "dtmi:test:Meter;1", "power": 1}`)
	if n := len(e.points(t)); n != 1 {
		t.Fatalf("%d points after a mismatching model, want 1", n)
	}
	// The registry survives a reopen from the log.
	reg2, err := devices.Open(t.Context(), e.log, e.svc, devices.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := reg2.Get("pnp1"); !ok || !d.Provisioned || d.ModelID != "dtmi:test:Sensor;1" || !reg2.Authenticate("pnp1", []byte(key)) {
		t.Fatalf("reopened registry: %+v %v", d, ok)
	}
}

// TestClientModeMosquitto runs the client mode against the external
// broker at 127.0.0.1:1883 with a paho device publishing through it.
func TestClientModeMosquitto(t *testing.T) {
	const addr = "127.0.0.1:1883"
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Skipf("no MQTT broker (Mosquitto) at %s: %v; start one to run this test", addr, err)
	}
	conn.Close()
	e := newEnv(t, false, ingest.Options{})
	var rb [4]byte
	rand.Read(rb[:])
	sfx := hex.EncodeToString(rb[:])
	dev, unknown := "mdev-"+sfx, "ghost-"+sfx
	e.register(t, dev, devices.PutRequest{TwinID: "msensor", ModelID: "dtmi:test:Sensor;1"})
	cl, err := mqtt.Dial(e.gw, mqtt.ClientOptions{Broker: "tcp://" + addr, ClientID: "twinlog-test-" + sfx, CleanSession: true})
	if err != nil {
		t.Skipf("broker at %s refused twinlog: %v", addr, err)
	}
	defer cl.Close()
	e.reg.SetSender(cl)
	d, err := connect(t, addr, dev+"-dev", "")
	if err != nil {
		t.Skipf("broker at %s refused an anonymous device: %v", addr, err)
	}
	simulate(t, d, dev)
	time.Sleep(200 * time.Millisecond) // let twinlog's subscriptions settle
	for i := range 10 {
		publish(t, d, mqtt.TelemetryTopic(dev), 1, `{"co2": `+string(rune('0'+i))+`}`)
	}
	publish(t, d, mqtt.TelemetryTopic(unknown), 1, `{"co2": 1}`)
	publish(t, d, mqtt.ReportedTopic(dev), 1, `{"firmware": "9"}`)
	deadline := time.Now().Add(10 * time.Second)
	for len(e.points(t)) < 10 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	pts := e.points(t)
	if len(pts) != 10 {
		t.Fatalf("%d points through Mosquitto, want 10", len(pts))
	}
	for _, p := range pts {
		if p.Twin != "msensor" {
			t.Fatalf("point for twin %s: the unknown device's point was appended", p.Twin)
		}
	}
	resp, err := e.reg.Invoke(t.Context(), "msensor", "reboot", []byte("7"), 5*time.Second)
	if err != nil {
		t.Fatalf("command through Mosquitto: %v", err)
	}
	if string(resp.Payload) != `"rebooting in 7"` {
		t.Fatalf("response %s", resp.Payload)
	}
	for time.Now().Before(deadline) {
		if body, _, _ := e.svc.GetTwin(t.Context(), "msensor"); strings.Contains(string(body), `"firmware":"9"`) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("reported property not written through Mosquitto")
}
