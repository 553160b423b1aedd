package routes

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// CloudEvents types, as ADT sends them.
const (
	TypeTwinCreate         = "Microsoft.DigitalTwins.Twin.Create"
	TypeTwinUpdate         = "Microsoft.DigitalTwins.Twin.Update"
	TypeTwinDelete         = "Microsoft.DigitalTwins.Twin.Delete"
	TypeRelationshipCreate = "Microsoft.DigitalTwins.Relationship.Create"
	TypeRelationshipUpdate = "Microsoft.DigitalTwins.Relationship.Update"
	TypeRelationshipDelete = "Microsoft.DigitalTwins.Relationship.Delete"
	TypeTelemetry          = "microsoft.iot.telemetry"
)

// CloudEvent is one notification in CloudEvents 1.0 form.
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	Subject         string          `json:"subject,omitempty"`
	Time            string          `json:"time,omitempty"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	DataSchema      string          `json:"dataschema,omitempty"`
	TraceParent     string          `json:"traceparent,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`

	// Position is the log position of the event it came from (not sent).
	Position uint64 `json:"-"`
	// Key orders delivery: events with the same key (the twin) are
	// delivered in log order.
	Key string `json:"-"`
	// model is the twin's model, known from lifecycle events (not sent).
	model string
}

// Models resolves a twin's model id for dataschema and Twin.Update's
// modelId; the twin graph's snapshot satisfies it through ModelsOf.
type Models func(twin string) string

// ModelsOf returns a Models reading the twin graph's current snapshot.
func ModelsOf(g *twingraph.Graph) Models {
	return func(twin string) string {
		if t, ok := g.Snapshot().Twin(twin); ok {
			return t.Model
		}
		return ""
	}
}

// Convert appends to dst the CloudEvents that log event e causes, as ADT
// would send them, with source the instance host name. Events that cause no
// notification append nothing.
func Convert(dst []CloudEvent, e *event.Event, source string, models Models) ([]CloudEvent, error) {
	base := CloudEvent{SpecVersion: "1.0", ID: e.ID(), Source: source, DataContentType: "application/json",
		Time: time.Unix(0, e.Time).UTC().Format(time.RFC3339Nano), Position: e.Position}
	switch e.Type {
	case twingraph.TypeTwinCreated, twingraph.TypeTwinReplaced:
		var p twingraph.TwinState
		if err := twingraph.Decode(e, &p); err != nil {
			return dst, err
		}
		base.Type = TypeTwinCreate
		if e.Type == twingraph.TypeTwinReplaced {
			base.Type = TypeTwinUpdate
			base.Data = mustJSON(map[string]any{"modelId": p.Model, "patch": replacePatch(&p)})
		} else {
			base.Data = twinJSON(&p)
		}
		base.Subject, base.Key, base.model = p.ID, p.ID, p.Model
	case twingraph.TypeTwinPatched:
		var p twingraph.TwinPatched
		if err := twingraph.Decode(e, &p); err != nil {
			return dst, err
		}
		model := p.Model
		if model == "" && models != nil {
			model = models(p.ID)
		}
		base.Type, base.Subject, base.Key, base.model = TypeTwinUpdate, p.ID, p.ID, model
		base.Data = mustJSON(struct {
			ModelID string          `json:"modelId"`
			Patch   json.RawMessage `json:"patch"`
		}{model, p.Patch})
	case twingraph.TypeTwinDeleted:
		var p twingraph.TwinRef
		if err := twingraph.Decode(e, &p); err != nil {
			return dst, err
		}
		base.Type, base.Subject, base.Key = TypeTwinDelete, p.ID, p.ID
		base.Data = mustJSON(map[string]any{"$dtId": p.ID})
	case twingraph.TypeRelationshipCreated, twingraph.TypeRelationshipReplaced:
		var p twingraph.RelationshipState
		if err := twingraph.Decode(e, &p); err != nil {
			return dst, err
		}
		base.Type = TypeRelationshipCreate
		if e.Type == twingraph.TypeRelationshipReplaced {
			base.Type = TypeRelationshipUpdate
		}
		base.Subject, base.Key = p.Source+"/relationships/"+p.ID, p.Source
		base.Data = relJSON(p.ID, p.Source, p.Target, p.Name, p.Properties)
	case twingraph.TypeRelationshipPatched:
		var p twingraph.RelationshipPatched
		if err := twingraph.Decode(e, &p); err != nil {
			return dst, err
		}
		model := ""
		if models != nil {
			model = models(p.Source)
		}
		base.Type, base.Subject, base.Key = TypeRelationshipUpdate, p.Source+"/relationships/"+p.ID, p.Source
		base.Data = mustJSON(struct {
			ModelID string          `json:"modelId"`
			Patch   json.RawMessage `json:"patch"`
		}{model, p.Patch})
	case twingraph.TypeRelationshipDeleted:
		var p twingraph.RelationshipRef
		if err := twingraph.Decode(e, &p); err != nil {
			return dst, err
		}
		base.Type, base.Subject, base.Key = TypeRelationshipDelete, p.Source+"/relationships/"+p.ID, p.Source
		base.Data = relJSON(p.ID, p.Source, p.Target, p.Name, nil)
	case twingraph.TypeTelemetry:
		var p twingraph.Telemetry
		if err := twingraph.Decode(e, &p); err != nil {
			return dst, err
		}
		dst = append(dst, telemetry(base, models, p.Twin, p.Component, p.MessageID, p.Body))
	case twingraph.TypeTelemetryBatch:
		err := twingraph.DecodeTelemetryBatch(e.Payload, func(i int, p *twingraph.TelemetryPoint) error {
			b := base
			b.ID = e.ID() + "." + strconv.Itoa(i)
			ce := telemetry(b, models, p.Twin, p.Component, p.MessageID, append(json.RawMessage(nil), p.Body...))
			dst = append(dst, ce)
			return nil
		})
		return dst, err
	default:
		return dst, nil
	}
	if base.Type != "" && base.Type != TypeTelemetry {
		dst = append(dst, base)
	}
	return dst, nil
}

func telemetry(base CloudEvent, models Models, twin, component, messageID string, body json.RawMessage) CloudEvent {
	base.Type = TypeTelemetry
	base.Source = base.Source + "/digitaltwins/" + twin
	base.Subject = component
	base.Key = twin
	if messageID != "" {
		base.ID = messageID
	}
	if models != nil {
		base.DataSchema = models(twin)
	}
	base.Data = body
	return base
}

func mustJSON(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return json.RawMessage("null")
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// twinJSON renders a twin state the way GET /digitaltwins/{id} does,
// without per-property metadata.
func twinJSON(p *twingraph.TwinState) json.RawMessage {
	m := map[string]any{"$dtId": p.ID, "$metadata": map[string]any{"$model": p.Model}}
	for k, v := range p.Properties {
		m[k] = v
	}
	for name, c := range p.Components {
		cm := map[string]any{"$metadata": map[string]any{}}
		for k, v := range c.Properties {
			cm[k] = v
		}
		m[name] = cm
	}
	return mustJSON(m)
}

// replacePatch expresses a replaced twin as a JSON Patch of its properties.
func replacePatch(p *twingraph.TwinState) []map[string]any {
	ops := []map[string]any{}
	for k, v := range p.Properties {
		ops = append(ops, map[string]any{"op": "add", "path": "/" + k, "value": v})
	}
	return ops
}

func relJSON(id, src, tgt, name string, props json.RawMessage) json.RawMessage {
	m := map[string]any{}
	if len(props) > 0 {
		json.Unmarshal(props, &m)
	}
	m["$relationshipId"], m["$sourceId"], m["$targetId"], m["$relationshipName"] = id, src, tgt, name
	return mustJSON(m)
}
