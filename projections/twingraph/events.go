package twingraph

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/twinlog/twinlog/engine/event"
)

// Event types written by the twin service and applied by the Graph. The
// table in doc.go gives each one's stream and payload.
const (
	TypeModelUploaded       = "model.uploaded"
	TypeModelDecommissioned = "model.decommissioned"
	TypeModelDeleted        = "model.deleted"

	TypeTwinCreated  = "twin.created"
	TypeTwinReplaced = "twin.replaced"
	TypeTwinPatched  = "twin.patched"
	TypeTwinDeleted  = "twin.deleted"

	TypeRelationshipCreated  = "relationship.created"
	TypeRelationshipReplaced = "relationship.replaced"
	TypeRelationshipPatched  = "relationship.patched"
	TypeRelationshipDeleted  = "relationship.deleted"
	TypeRelationshipLinked   = "relationship.linked"
	TypeRelationshipUnlinked = "relationship.unlinked"

	TypeTelemetry = "telemetry"
)

// SchemaVersion is the payload layout version of every event type above.
const SchemaVersion uint16 = 1

// Stream names.
const (
	// ModelsStream holds every model event.
	ModelsStream = "models"
	twinPrefix   = "twin/"
	telemPrefix  = "telemetry/"
)

// TwinStream returns the stream of a twin's own events and of its outgoing
// relationships' events.
func TwinStream(id string) string { return twinPrefix + id }

// TelemetryStream returns the stream of a twin's telemetry.
func TelemetryStream(id string) string { return telemPrefix + id }

// ModelsUploaded is the payload of model.uploaded: a batch of DTDL
// interface documents added atomically. Upload time is the event time.
type ModelsUploaded struct {
	Models []json.RawMessage `json:"models"`
}

// ModelRef is the payload of model.decommissioned and model.deleted.
type ModelRef struct {
	ID string `json:"id"`
}

// SectionState is the properties of a twin's root or of one component.
type SectionState struct {
	// Properties are canonical JSON values by name.
	Properties map[string]json.RawMessage `json:"properties,omitempty"`
	// SourceTimes are the properties' sourceTime metadata, when set.
	SourceTimes map[string]string `json:"sourceTimes,omitempty"`
}

// TwinState is the payload of twin.created and twin.replaced: the whole
// twin. Every property's lastUpdateTime is the event time.
type TwinState struct {
	ID    string `json:"id"`
	Model string `json:"model"`
	SectionState
	// Components are present even when empty.
	Components map[string]SectionState `json:"components,omitempty"`
}

// SectionChange is what a patch changed in a twin's root or in a component.
type SectionChange struct {
	// Set are new canonical values of top-level properties.
	Set map[string]json.RawMessage `json:"set,omitempty"`
	// Unset are removed properties.
	Unset []string `json:"unset,omitempty"`
	// SourceTimes are changed sourceTime metadata; "" clears one.
	SourceTimes map[string]string `json:"sourceTimes,omitempty"`
}

// ComponentChange is what a patch changed in one component.
type ComponentChange struct {
	SectionChange
	// Create is set when the component did not exist before the patch.
	Create bool `json:"create,omitempty"`
	// Remove is set when the patch removed the component (possible only
	// when migrating to a model without it).
	Remove bool `json:"remove,omitempty"`
}

// TwinPatched is the payload of twin.patched: the JSON Patch as applied
// (for notifications and history) and its effect, which is what the Graph
// applies. Properties whose value or sourceTime changed get the event time
// as lastUpdateTime.
type TwinPatched struct {
	ID string `json:"id"`
	// Model is the new model when the patch migrated the twin, else "".
	Model string `json:"model,omitempty"`
	// Patch is the JSON Patch document as applied, paths relative to the
	// twin root (component patches are prefixed with the component).
	Patch json.RawMessage `json:"patch"`
	SectionChange
	Components map[string]ComponentChange `json:"components,omitempty"`
}

// TwinRef is the payload of twin.deleted.
type TwinRef struct {
	ID string `json:"id"`
}

// RelationshipState is the payload of relationship.created and
// relationship.replaced, on the source twin's stream.
type RelationshipState struct {
	Source string `json:"source"`
	ID     string `json:"id"`
	Name   string `json:"name"`
	Target string `json:"target"`
	// Properties is the canonical JSON object of the relationship's
	// properties, "{}" when none.
	Properties json.RawMessage `json:"properties"`
}

// RelationshipPatched is the payload of relationship.patched.
type RelationshipPatched struct {
	Source string `json:"source"`
	ID     string `json:"id"`
	// Patch is the JSON Patch as applied.
	Patch json.RawMessage `json:"patch"`
	// Properties is the resulting canonical properties object.
	Properties json.RawMessage `json:"properties"`
}

// RelationshipRef is the payload of relationship.deleted (on the source's
// stream) and of the relationship.linked / relationship.unlinked markers (on
// the target's stream). The markers change nothing but the target stream's
// version, so a concurrent delete of the target conflicts.
type RelationshipRef struct {
	Source string `json:"source"`
	ID     string `json:"id"`
	Name   string `json:"name"`
	Target string `json:"target"`
}

// Telemetry is the payload of telemetry events, on stream
// "telemetry/<twin id>".
type Telemetry struct {
	Twin      string `json:"twin"`
	Component string `json:"component,omitempty"`
	MessageID string `json:"messageId"`
	// SourceTime is the Telemetry-Source-Time header, "" when absent.
	SourceTime string          `json:"sourceTime,omitempty"`
	Body       json.RawMessage `json:"body"`
}

// NewEvent returns an event of type typ on stream with payload p encoded
// as JSON at SchemaVersion.
func NewEvent(stream, typ, actor string, p any) (event.Event, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return event.Event{}, fmt.Errorf("encode %s: %w", typ, err)
	}
	data := bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
	return event.Event{Stream: stream, Type: typ, Actor: actor, SchemaVersion: SchemaVersion, Payload: data}, nil
}

// Decode decodes the payload of e into p, checking the schema version:
// JSON at SchemaVersion, or the binary twin.patched payload at
// PatchedSchemaVersion (into a *TwinPatched).
func Decode(e *event.Event, p any) error {
	if e.SchemaVersion == PatchedSchemaVersion {
		return decodeV2(e, p)
	}
	if e.SchemaVersion != SchemaVersion {
		return fmt.Errorf("%s at %d: unknown schema version %d", e.Type, e.Position, e.SchemaVersion)
	}
	if err := json.Unmarshal(e.Payload, p); err != nil {
		return fmt.Errorf("decode %s at %d: %w", e.Type, e.Position, err)
	}
	return nil
}
