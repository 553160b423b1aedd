package twins

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// SendTelemetry records a telemetry message from a twin or one of its
// components (ADT DigitalTwins_SendTelemetry). messageID is required; a
// message id seen recently for the same twin is acknowledged without being
// recorded again. sourceTime, when given, must be RFC 3339. Telemetry does
// not change the twin.
func (s *Service) SendTelemetry(ctx context.Context, actor, twinID, component, messageID, sourceTime string, body []byte) error {
	if messageID == "" {
		return invalid("InvalidArgument", "the Message-Id header is required")
	}
	if len(messageID) > s.opts.MaxNameBytes {
		return invalid("InvalidArgument", "the Message-Id is longer than %d bytes", s.opts.MaxNameBytes)
	}
	if sourceTime != "" {
		if _, err := time.Parse(time.RFC3339Nano, sourceTime); err != nil {
			return invalid("InvalidArgument", "Telemetry-Source-Time %q is not an RFC 3339 date-time", sourceTime)
		}
	}
	if len(body) > s.opts.MaxTwinBytes {
		return tooLarge("telemetry", len(body), s.opts.MaxTwinBytes)
	}
	v, err := twingraph.DecodeJSON(body)
	if err != nil {
		return invalid("InvalidArgument", "the telemetry body is not valid JSON: %v", err)
	}
	enc, err := twingraph.Canonical(v)
	if err != nil {
		return invalid("InvalidArgument", "the telemetry body: %v", err)
	}
	p := &twingraph.Telemetry{Twin: twinID, Component: component, MessageID: messageID, SourceTime: sourceTime, Body: json.RawMessage(enc)}
	_, err = s.execute(ctx, func(ctx context.Context) (engine.Decision, error) {
		snap := s.g.Snapshot()
		t, ok := snap.Twin(twinID)
		if !ok {
			return engine.Decision{}, twinNotFound(twinID)
		}
		if component != "" {
			if _, ok := t.Component(component); !ok {
				return engine.Decision{}, engine.Errorf(engine.KindNotFound, "ComponentNotFound", "twin %s has no component %s", twinID, component)
			}
		}
		var version uint64
		if rec, ok := snap.Telemetry(twinID); ok {
			if slices.Contains(rec.Recent, messageID) {
				return engine.Decision{}, nil // a duplicate
			}
			version = rec.Version
		}
		ev, err := twingraph.NewEvent(twingraph.TelemetryStream(twinID), twingraph.TypeTelemetry, actor, p)
		if err != nil {
			return engine.Decision{}, err
		}
		return engine.Decision{Events: []event.Event{ev},
			Expect: []eventlog.Expect{{Stream: twingraph.TelemetryStream(twinID), Version: version}}}, nil
	})
	return err
}
