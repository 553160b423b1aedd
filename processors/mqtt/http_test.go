package mqtt_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/httpapi"
	"github.com/twinlog/twinlog/processors/ingest"
)

// TestDevicesHTTP drives /devices and POST /digitaltwins/{id}/commands/{name}
// over HTTP with a simulated device on the embedded broker.
func TestDevicesHTTP(t *testing.T) {
	e := newEnv(t, true, ingest.Options{})
	api := httpapi.New(httpapi.Config{Engine: e.eng, AllowAnonymous: true, Logger: quiet})
	api.RegisterTwins(e.svc)
	api.RegisterDevices(e.reg)
	srv := httptest.NewServer(api)
	defer srv.Close()
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	code, dev := do("PUT", "/devices/dev1", `{"twinId": "sensor1", "modelId": "dtmi:test:Sensor;1"}`)
	key, _ := dev["key"].(string)
	if code != 201 || key == "" || dev["provisioned"] != true || dev["twinId"] != "sensor1" {
		t.Fatalf("PUT /devices/dev1: %d %v", code, dev)
	}
	if code, m := do("PUT", "/devices/dev1", `{"twinId": "sensor1", "modelId": "dtmi:test:Sensor;1"}`); code != 200 || m["key"] != nil {
		t.Fatalf("second PUT: %d %v, want 200 without a key", code, m)
	}
	if code, m := do("GET", "/devices/dev1", ""); code != 200 || m["key"] != nil || m["salt"] != nil || m["hash"] != nil {
		t.Fatalf("GET: %d %v, want no key material", code, m)
	}
	if code, m := do("GET", "/devices", ""); code != 200 || len(m["value"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, m)
	}
	c, err := connect(t, e.brk.Addr(), "dev1", key)
	if err != nil {
		t.Fatal(err)
	}
	simulate(t, c, "dev1")
	code, m := do("POST", "/digitaltwins/sensor1/commands/reboot", `3`)
	if code != 200 || m["status"] != float64(200) || m["payload"] != "rebooting in 3" {
		t.Fatalf("command: %d %v", code, m)
	}
	// The model declares no command "silent".
	if code, m := do("POST", "/digitaltwins/sensor1/commands/silent", ``); code != 404 || m["error"].(map[string]any)["code"] != "CommandNotFound" {
		t.Fatalf("unknown command: %d %v", code, m)
	}
	// A device that does not answer: 504 in ADT's error shape.
	code, dev2 := do("PUT", "/devices/dev2", `{"twinId": "sensor2", "modelId": "dtmi:test:Sensor;1"}`)
	if code != 201 {
		t.Fatalf("PUT dev2: %d", code)
	}
	if _, err := connect(t, e.brk.Addr(), "dev2", dev2["key"].(string)); err != nil {
		t.Fatal(err)
	}
	code, m = do("POST", "/digitaltwins/sensor2/commands/reboot?responseTimeoutInSeconds=1", `1`)
	if code != 504 || m["error"].(map[string]any)["code"] != "GatewayTimeout" {
		t.Fatalf("silent device: %d %v, want 504 GatewayTimeout", code, m)
	}
	code, m = do("POST", "/devices/dev1/regenerateKey", "")
	if nk, _ := m["key"].(string); code != 200 || nk == "" || nk == key {
		t.Fatalf("regenerateKey: %d %v", code, m)
	}
	if code, _ := do("DELETE", "/devices/dev1", ""); code != 204 {
		t.Fatalf("DELETE: %d", code)
	}
	if code, m := do("GET", "/devices/dev1", ""); code != 404 || m["error"].(map[string]any)["code"] != "DeviceNotFound" {
		t.Fatalf("GET deleted: %d %v", code, m)
	}
	if code, m := do("PUT", "/devices/a%2Fb", `{}`); code != 400 {
		t.Fatalf("PUT bad id: %d %v, want 400", code, m)
	}
}
