package timetravel

import (
	"strconv"
	"strings"
	"time"

	"github.com/twinlog/twinlog/engine"
)

// At is a point of the log's history: a position, or a time. The zero At
// means "now" (the log's head).
type At struct {
	// Position, when not 0, is a log position: the state right after the
	// event at that position was applied.
	Position uint64
	// Time, when Position is 0 and Time is not zero, is a time: the state
	// after every event the log accepted at or before it.
	Time time.Time
}

// IsZero reports whether a is "now".
func (a At) IsZero() bool { return a.Position == 0 && a.Time.IsZero() }

// String formats a the way ParseAt reads it.
func (a At) String() string {
	switch {
	case a.Position != 0:
		return strconv.FormatUint(a.Position, 10)
	case !a.Time.IsZero():
		return a.Time.UTC().Format(time.RFC3339Nano)
	}
	return ""
}

// ParseAt reads a point of history as an API parameter spells it: a log
// position (digits) or an RFC 3339 time. An invalid value is an
// engine.KindInvalid error naming param.
func ParseAt(param, s string) (At, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return At{}, engine.Errorf(engine.KindInvalid, "InvalidArgument", "%s is empty; give an RFC 3339 time or a log position", param)
	}
	if s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "-:T") {
		pos, err := strconv.ParseUint(s, 10, 64)
		if err != nil || pos == 0 {
			return At{}, engine.Errorf(engine.KindInvalid, "InvalidArgument", "%s %q is not a log position (a whole number from 1)", param, s)
		}
		return At{Position: pos}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return At{}, engine.Errorf(engine.KindInvalid, "InvalidArgument", "%s %q is neither an RFC 3339 time (2026-11-24T09:26:00Z) nor a log position", param, s)
	}
	return At{Time: t}, nil
}
