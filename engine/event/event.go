// Package event defines the envelope every fact in twinlog travels in, and its
// compact, versioned binary codec.
//
// An Event is what the log stores: a position (global and monotonic, assigned
// by the log), the time the log accepted it, the stream it belongs to (a twin
// id, the model set, a telemetry shard, ...), a type, who caused it, and an
// opaque payload whose layout is named by Type and SchemaVersion.
//
// The codec is the on-disk and on-the-wire form. Its first byte is the codec
// version, so logs written by an older twinlog stay readable after the format
// evolves: Decode dispatches on that byte and rejects versions it does not know
// with ErrVersion instead of guessing.
package event

import (
	"time"
)

// Event is one entry of the log.
//
// Position and Time are assigned by the log on append; callers leave them zero.
// The byte slices and strings of an Event returned by a decoder may alias the
// buffer it was decoded from, see Decode.
type Event struct {
	// Position is the event's place in the log: 1 for the first event, then
	// strictly increasing by one. Zero means "not yet appended".
	Position uint64
	// Time is when the log accepted the event, in Unix nanoseconds. Within one
	// log it never decreases as Position increases, so seeking by time is a
	// binary search.
	Time int64
	// Stream names the aggregate the event belongs to: "twin/<id>", "models",
	// "telemetry/<shard>", ... Expected-version checks are per stream.
	Stream string
	// Type names the fact: "twin.created", "twin.patched", "telemetry", ...
	Type string
	// Actor is the principal that caused the event ("user:alice",
	// "handler:comfort@3", "system").
	Actor string
	// CausationID is the id of the event or request that directly caused this
	// one; empty for user requests without one.
	CausationID string
	// CorrelationID groups all events caused, transitively, by one request.
	CorrelationID string
	// SchemaVersion is the version of the payload layout for this Type.
	SchemaVersion uint16
	// Payload is the type-specific body.
	Payload []byte
}

// Timestamp returns the event's log time as a time.Time in UTC.
func (e *Event) Timestamp() time.Time { return time.Unix(0, e.Time).UTC() }

// ID returns the event's identity: its log position in decimal. Causation ids
// of derived events refer to it.
func (e *Event) ID() string { return formatUint(e.Position) }

func formatUint(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}

// Size returns an estimate of the in-memory size of e in bytes, used to bound
// batches.
func (e *Event) Size() int {
	return 64 + len(e.Stream) + len(e.Type) + len(e.Actor) + len(e.CausationID) +
		len(e.CorrelationID) + len(e.Payload)
}
