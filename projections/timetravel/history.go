package timetravel

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// Change is one event of a twin's stream, as its history lists it.
type Change struct {
	// Position is the event's log position; EventID is the same in the
	// form causation ids use.
	Position uint64 `json:"position"`
	EventID  string `json:"eventId"`
	// Time is the event's log time, RFC 3339 with nanoseconds, UTC.
	Time string `json:"time"`
	// Type is the event type: twin.created, twin.patched,
	// relationship.created, ... (see twingraph's doc).
	Type string `json:"type"`
	// Actor is who made the change ("user:alice", "handler:comfort@3").
	Actor string `json:"actor,omitempty"`
	// CausationID is the id of the event that caused this one, when a
	// handler or a cascade did; CorrelationID groups one request's events.
	CausationID   string `json:"causationId,omitempty"`
	CorrelationID string `json:"correlationId,omitempty"`
	// Patch is the JSON Patch as applied, for twin.patched and
	// relationship.patched.
	Patch json.RawMessage `json:"patch,omitempty"`
	// Model is the twin's new model when a patch migrated it.
	Model string `json:"model,omitempty"`
	// Body is the rest of the event: the whole twin for twin.created and
	// twin.replaced, the relationship for relationship events.
	Body json.RawMessage `json:"body,omitempty"`
}

// HistoryRequest selects part of a twin's history.
type HistoryRequest struct {
	// Twin is the twin id.
	Twin string
	// From and To bound the events by time or position, both inclusive;
	// zero means the start and the head.
	From, To At
	// After continues a listing: only events after this position.
	After uint64
	// Max bounds the changes returned. Default 100.
	Max int
}

// History returns the changes of a twin (its own events and those of its
// outgoing relationships, in log order) within the request's bounds, and
// the position to continue after (0 when there is no more). A twin that
// never existed is a DigitalTwinNotFound error; a deleted one still has its
// history.
func (t *Traveler) History(ctx context.Context, req HistoryRequest) ([]Change, uint64, error) {
	stream := twingraph.TwinStream(req.Twin)
	ver, err := t.log.StreamVersion(ctx, stream)
	if err != nil {
		return nil, 0, fmt.Errorf("read stream version: %w", err)
	}
	if ver == 0 {
		return nil, 0, engine.Errorf(engine.KindNotFound, "DigitalTwinNotFound", "There is no digital twin instance that exists with the ID %s.", req.Twin)
	}
	max := req.Max
	if max <= 0 {
		max = 100
	}
	from := uint64(1)
	switch {
	case req.From.Position != 0:
		from = req.From.Position
	case !req.From.Time.IsZero():
		if from, err = t.log.SeekTime(ctx, req.From.Time); err != nil {
			return nil, 0, fmt.Errorf("seek: %w", err)
		}
	}
	from = max64(from, req.After+1)
	to := ver
	if !req.To.IsZero() {
		p, err := t.Resolve(ctx, req.To)
		if err != nil {
			return nil, 0, err
		}
		to = min(to, p)
	}
	var out []Change
	for from <= to && len(out) < max {
		evs, err := t.log.ReadStream(ctx, stream, from, max-len(out))
		if err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", stream, err)
		}
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			e := &evs[i]
			if e.Position > to {
				return out, 0, nil
			}
			c, err := change(e)
			if err != nil {
				return nil, 0, err
			}
			out = append(out, c)
		}
		from = evs[len(evs)-1].Position + 1
	}
	if len(out) == max && out[len(out)-1].Position < to {
		// Promise a next page only when there is one.
		last := out[len(out)-1].Position
		more, err := t.log.ReadStream(ctx, stream, last+1, 1)
		if err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", stream, err)
		}
		if len(more) > 0 && more[0].Position <= to {
			return out, last, nil
		}
	}
	return out, 0, nil
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

func change(e *event.Event) (Change, error) {
	c := Change{
		Position: e.Position, EventID: e.ID(), Time: time.Unix(0, e.Time).UTC().Format(time.RFC3339Nano),
		Type: e.Type, Actor: e.Actor, CausationID: e.CausationID, CorrelationID: e.CorrelationID,
	}
	switch e.Type {
	case twingraph.TypeTwinPatched:
		var p twingraph.TwinPatched
		if err := twingraph.Decode(e, &p); err != nil {
			return c, err
		}
		c.Patch, c.Model = p.Patch, p.Model
	case twingraph.TypeRelationshipPatched:
		var p twingraph.RelationshipPatched
		if err := twingraph.Decode(e, &p); err != nil {
			return c, err
		}
		c.Patch = p.Patch
		c.Body, _ = json.Marshal(struct {
			Source     string          `json:"source"`
			ID         string          `json:"id"`
			Properties json.RawMessage `json:"properties"`
		}{p.Source, p.ID, p.Properties})
	default:
		if e.SchemaVersion == twingraph.SchemaVersion && json.Valid(e.Payload) {
			c.Body = append(json.RawMessage(nil), e.Payload...)
		}
	}
	return c, nil
}
