package twins

import (
	"context"

	"github.com/twinlog/twinlog/engine/event"
)

// Cause is what caused a write, recorded in the envelope of the events it
// appends: the id of the event it reacts to (CausationID) and of the first
// event of the chain of reactions (CorrelationID).
type Cause struct {
	CausationID, CorrelationID string
}

type causeKey struct{}

// WithCause returns ctx carrying c: the writes the service makes with it
// record c in their events (those that name no cause of their own).
func WithCause(ctx context.Context, c Cause) context.Context {
	return context.WithValue(ctx, causeKey{}, c)
}

func causeOf(ctx context.Context) (Cause, bool) {
	c, ok := ctx.Value(causeKey{}).(Cause)
	return c, ok && c != Cause{}
}

// stamp records c in e unless e names a cause already.
func (c Cause) stamp(e *event.Event) {
	if e.CausationID == "" && e.CorrelationID == "" {
		e.CausationID, e.CorrelationID = c.CausationID, c.CorrelationID
	}
}
