package mqtt

import (
	"strings"
	"testing"
)

func TestParseTopic(t *testing.T) {
	tests := []struct {
		topic string
		ok    bool
		want  deviceTopic
	}{
		{"devices/d1/telemetry", true, deviceTopic{kind: kindTelemetry, device: "d1"}},
		{"devices/d1/properties/reported", true, deviceTopic{kind: kindReported, device: "d1"}},
		{"devices/d1/commands/reboot/res/42", true, deviceTopic{kind: kindResponse, device: "d1", command: "reboot", requestID: "42", status: 200}},
		{"devices/d1/commands/reboot/res/42/503", true, deviceTopic{kind: kindResponse, device: "d1", command: "reboot", requestID: "42", status: 503}},
		{"devices/d1/commands/reboot/req/42", false, deviceTopic{}},
		{"devices/d1/commands/reboot/res/42/99", false, deviceTopic{}},
		{"devices/d1/commands/reboot/res/42/abc", false, deviceTopic{}},
		{"devices/d1/commands//res/42", false, deviceTopic{}},
		{"devices//telemetry", false, deviceTopic{}},
		{"devices/d1", false, deviceTopic{}},
		{"devices/d1/telemetry/extra", false, deviceTopic{}},
		{"other/d1/telemetry", false, deviceTopic{}},
		{"", false, deviceTopic{}},
	}
	for _, tc := range tests {
		got, ok := parseTopic(tc.topic)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseTopic(%q) = %+v, %v; want %+v, %v", tc.topic, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParseTopic checks that no topic makes the parser panic, that what it
// accepts names a device without a level separator, and that the topics
// twinlog builds parse back to what they were built from.
func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{"devices/d1/telemetry", "devices/d1/properties/reported", "devices/d/commands/c/res/r/201", "devices/", "devices//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		dt, ok := parseTopic(topic)
		if !ok {
			return
		}
		if dt.device == "" || strings.Contains(dt.device, "/") {
			t.Fatalf("parseTopic(%q) accepted device %q", topic, dt.device)
		}
		switch dt.kind {
		case kindTelemetry:
			if TelemetryTopic(dt.device) != topic {
				t.Fatalf("telemetry topic %q does not round-trip", topic)
			}
		case kindReported:
			if ReportedTopic(dt.device) != topic {
				t.Fatalf("reported topic %q does not round-trip", topic)
			}
		case kindResponse:
			if dt.command == "" || dt.requestID == "" || dt.status < 100 || dt.status > 599 {
				t.Fatalf("parseTopic(%q) = %+v", topic, dt)
			}
		default:
			t.Fatalf("parseTopic(%q) accepted kind %d", topic, dt.kind)
		}
	})
}
