package mqtt_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/twinlog/twinlog/processors/devices"
	"github.com/twinlog/twinlog/processors/ingest"
	"github.com/twinlog/twinlog/processors/mqtt"
)

func publish(t testing.TB, c paho.Client, topic string, qos byte, payload string) {
	t.Helper()
	tok := c.Publish(topic, qos, false, payload)
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("publish %s: no PUBACK in 10 s", topic)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

// TestBrokerQoS1AckedAfterDurable checks that every point acknowledged at
// QoS 1 is already in the log when the PUBACK arrives.
func TestBrokerQoS1AckedAfterDurable(t *testing.T) {
	e := newEnv(t, true, ingest.Options{})
	key := e.register(t, "dev1", devices.PutRequest{TwinID: "sensor1", ModelID: "dtmi:test:Sensor;1"})
	c, err := connect(t, e.brk.Addr(), "dev1", key)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		publish(t, c, mqtt.TelemetryTopic("dev1"), 1, fmt.Sprintf(`{"temperature": %d.5, "messageId": "m%d"}`, i, i))
		// The PUBACK has arrived: the point must be in the log now.
		pts := e.points(t)
		if len(pts) != i+1 {
			t.Fatalf("after PUBACK %d: %d points in the log, want %d", i, len(pts), i+1)
		}
		p := pts[i]
		if p.Twin != "sensor1" || p.MessageID != fmt.Sprintf("m%d", i) || string(p.Body) != fmt.Sprintf(`{"temperature":%d.5}`, i) {
			t.Fatalf("point %d = %+v body %s", i, p, p.Body)
		}
	}
	// Many in flight at once from one connection, acknowledged in batches.
	var toks []paho.Token
	for i := range 500 {
		toks = append(toks, c.Publish(mqtt.TelemetryTopic("dev1"), 1, false, fmt.Sprintf(`[{"co2": %d}, {"hvac": 1, "component": "hvac", "fan": %d}]`, i, i)))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	if got := len(e.points(t)); got < 20+500 {
		t.Fatalf("%d points after 500 acknowledged messages, want >= 520", got)
	}
}

func TestBrokerRefusesBadCredentials(t *testing.T) {
	e := newEnv(t, true, ingest.Options{})
	key := e.register(t, "dev1", devices.PutRequest{ModelID: "dtmi:test:Sensor;1"})
	tests := []struct {
		name, user, pass string
	}{
		{"wrong key", "dev1", key + "x"},
		{"empty key", "dev1", ""},
		{"unknown device", "nobody", key},
		{"no username", "", key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := connect(t, e.brk.Addr(), tt.user, tt.pass)
			if err == nil {
				c.Disconnect(0)
				t.Fatalf("connect as %q succeeded, want refused", tt.user)
			}
			if !strings.Contains(err.Error(), "not Authorized") && !strings.Contains(err.Error(), "bad user name or password") {
				t.Logf("refused with: %v", err)
			}
		})
	}
	// A regenerated key replaces the old one.
	nk, err := e.reg.RegenerateKey(t.Context(), "test", "dev1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := connect(t, e.brk.Addr(), "dev1", key); err == nil {
		t.Fatal("old key still accepted after regeneration")
	}
	if _, err := connect(t, e.brk.Addr(), "dev1", nk); err != nil {
		t.Fatalf("new key refused: %v", err)
	}
	if len(e.points(t)) != 0 {
		t.Fatal("points appended")
	}
}

// TestBrokerRejections: points that fail validation, another device's
// topic, a device deleted while connected: nothing appended, reported on
// the errors topic.
func TestBrokerRejections(t *testing.T) {
	e := newEnv(t, true, ingest.Options{})
	key := e.register(t, "dev1", devices.PutRequest{ModelID: "dtmi:test:Sensor;1"})
	key2 := e.register(t, "dev2", devices.PutRequest{ModelID: "dtmi:test:Sensor;1"})
	c, err := connect(t, e.brk.Addr(), "dev1", key)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reports []map[string]any
	got := make(chan struct{}, 16)
	if tok := c.Subscribe("devices/dev1/errors", 0, func(_ paho.Client, m paho.Message) {
		var r map[string]any
		json.Unmarshal(m.Payload(), &r)
		mu.Lock()
		reports = append(reports, r)
		mu.Unlock()
		got <- struct{}{}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	bad := []struct{ name, payload, code string }{
		{"wrong type", `{"temperature": "hot"}`, "ValidationFailed"},
		{"unknown telemetry", `{"pressure": 1}`, "UnknownTelemetry"},
		{"names a twin", `{"twinId": "other", "temperature": 1}`, "InvalidArgument"},
		{"malformed", `{"temperature": `, "InvalidJson"},
	}
	for _, b := range bad {
		publish(t, c, mqtt.TelemetryTopic("dev1"), 1, b.payload)
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no report on devices/dev1/errors", b.name)
		}
		mu.Lock()
		r := reports[len(reports)-1]
		mu.Unlock()
		rej, _ := r["rejected"].([]any)
		if len(rej) != 1 || rej[0].(map[string]any)["code"] != b.code {
			t.Fatalf("%s: report %v, want code %s", b.name, r, b.code)
		}
	}
	// Publishing as another device is refused by the ACL (MQTT 3.1.1: the
	// connection is closed).
	c2, err := connect(t, e.brk.Addr(), "dev2", key2)
	if err != nil {
		t.Fatal(err)
	}
	c2.Publish(mqtt.TelemetryTopic("dev1"), 1, false, `{"temperature": 1}`).WaitTimeout(2 * time.Second)
	if n := len(e.points(t)); n != 0 {
		t.Fatalf("%d points appended, want 0", n)
	}
	if s := e.gw.Stats(); s.Points != 0 || s.Rejected < 4 {
		t.Fatalf("stats %+v, want 0 points and >= 4 rejected", s)
	}
}

// waitClosed waits until the broker has closed c's connection.
func waitClosed(t *testing.T, c paho.Client, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); c.IsConnectionOpen(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the connection is still open", what)
		}
	}
}

// TestBrokerDisconnectsRevokedDevices: a device given a new key or deleted
// is disconnected at once; it reconnects with the new key only, and other
// devices stay connected.
func TestBrokerDisconnectsRevokedDevices(t *testing.T) {
	e := newEnv(t, true, ingest.Options{})
	key := e.register(t, "dev1", devices.PutRequest{TwinID: "sensor1", ModelID: "dtmi:test:Sensor;1"})
	key2 := e.register(t, "dev2", devices.PutRequest{TwinID: "sensor2", ModelID: "dtmi:test:Sensor;1"})
	c, err := connect(t, e.brk.Addr(), "dev1", key)
	if err != nil {
		t.Fatal(err)
	}
	other, err := connect(t, e.brk.Addr(), "dev2", key2)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, c, mqtt.TelemetryTopic("dev1"), 1, `{"temperature": 1}`)

	nk, err := e.reg.RegenerateKey(t.Context(), "test", "dev1")
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c, "after a new key")
	if _, err := connect(t, e.brk.Addr(), "dev1", key); err == nil {
		t.Fatal("the old key still connects")
	}
	c, err = connect(t, e.brk.Addr(), "dev1", nk)
	if err != nil {
		t.Fatalf("the new key: %v", err)
	}
	publish(t, c, mqtt.TelemetryTopic("dev1"), 1, `{"temperature": 2}`)
	// Changing the device's twin keeps its key and its connection.
	if _, _, _, err := e.reg.Put(t.Context(), "test", "dev1", devices.PutRequest{TwinID: "sensor1b", ModelID: "dtmi:test:Sensor;1"}); err != nil {
		t.Fatal(err)
	}
	publish(t, c, mqtt.TelemetryTopic("dev1"), 1, `{"temperature": 3}`)

	if err := e.reg.Delete(t.Context(), "test", "dev1"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c, "after deletion")
	if _, err := connect(t, e.brk.Addr(), "dev1", nk); err == nil {
		t.Fatal("a deleted device still connects")
	}
	if !other.IsConnectionOpen() || !e.brk.Online("dev2") || e.brk.Online("dev1") {
		t.Fatalf("online: dev1 %v, dev2 %v (open %v); want dev2 only", e.brk.Online("dev1"), e.brk.Online("dev2"), other.IsConnectionOpen())
	}
	publish(t, other, mqtt.TelemetryTopic("dev2"), 1, `{"temperature": 4}`)
	var got []string
	for _, p := range e.points(t) {
		got = append(got, p.Twin+" "+string(p.Body))
	}
	want := []string{`sensor1 {"temperature":1}`, `sensor1 {"temperature":2}`, `sensor1b {"temperature":3}`, `sensor2 {"temperature":4}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("points %q, want %q", got, want)
	}
}
