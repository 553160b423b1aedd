package mqtt

import (
	"strconv"
	"strings"
)

// Topic levels; see the package doc.
const (
	topicRoot     = "devices/"
	topicTelem    = "telemetry"
	topicReported = "properties/reported"
	topicCommands = "commands"
	topicErrors   = "errors"
)

type topicKind uint8

const (
	kindNone topicKind = iota
	kindTelemetry
	kindReported
	kindResponse
)

// deviceTopic is a parsed device → twinlog topic.
type deviceTopic struct {
	kind      topicKind
	device    string
	command   string // kindResponse
	requestID string // kindResponse
	status    int    // kindResponse; 200 when absent
}

// parseTopic parses devices/{id}/telemetry, devices/{id}/properties/reported
// and devices/{id}/commands/{name}/res/{requestId}[/{status}].
func parseTopic(t string) (deviceTopic, bool) {
	rest, ok := strings.CutPrefix(t, topicRoot)
	if !ok {
		return deviceTopic{}, false
	}
	dev, rest, ok := strings.Cut(rest, "/")
	if !ok || dev == "" {
		return deviceTopic{}, false
	}
	switch rest {
	case topicTelem:
		return deviceTopic{kind: kindTelemetry, device: dev}, true
	case topicReported:
		return deviceTopic{kind: kindReported, device: dev}, true
	}
	rest, ok = strings.CutPrefix(rest, topicCommands+"/")
	if !ok {
		return deviceTopic{}, false
	}
	parts := strings.Split(rest, "/")
	if (len(parts) != 3 && len(parts) != 4) || parts[0] == "" || parts[1] != "res" || parts[2] == "" {
		return deviceTopic{}, false
	}
	dt := deviceTopic{kind: kindResponse, device: dev, command: parts[0], requestID: parts[2], status: 200}
	if len(parts) == 4 {
		s, err := strconv.Atoi(parts[3])
		if err != nil || s < 100 || s > 599 {
			return deviceTopic{}, false
		}
		dt.status = s
	}
	return dt, true
}

// CommandTopic is the topic a command request is published on.
func CommandTopic(deviceID, name, requestID string) string {
	return topicRoot + deviceID + "/" + topicCommands + "/" + name + "/req/" + requestID
}

// ResponseTopic is the topic a device publishes a command response on;
// status 0 leaves the status level out (200).
func ResponseTopic(deviceID, name, requestID string, status int) string {
	t := topicRoot + deviceID + "/" + topicCommands + "/" + name + "/res/" + requestID
	if status != 0 {
		t += "/" + strconv.Itoa(status)
	}
	return t
}

// TelemetryTopic is the topic a device publishes telemetry on.
func TelemetryTopic(deviceID string) string { return topicRoot + deviceID + "/" + topicTelem }

// ReportedTopic is the topic a device publishes reported properties on.
func ReportedTopic(deviceID string) string { return topicRoot + deviceID + "/" + topicReported }

// ErrorsTopic is the topic twinlog publishes a device's rejection reports on.
func ErrorsTopic(deviceID string) string { return topicRoot + deviceID + "/" + topicErrors }
