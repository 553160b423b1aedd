package query

import (
	"fmt"

	"github.com/twinlog/twinlog/engine"
)

// Error codes of the query language.
const (
	// CodeQueryError is ADT's code for every problem with the query text.
	CodeQueryError = "SqlQueryError"
	// CodeTimeout reports an exhausted time budget.
	CodeTimeout = "QueryTimeout"
	// CodeTooLarge reports an exhausted memory budget.
	CodeTooLarge = "QueryMemoryExceeded"
	// CodeBadToken reports a continuation token that cannot be used.
	CodeBadToken = "BadRequest"
)

// invalid returns a SqlQueryError with a formatted message.
func invalid(format string, args ...any) *engine.Error {
	return engine.Errorf(engine.KindInvalid, CodeQueryError, format, args...)
}

// syntaxError reports a problem at a position of the text.
func syntaxError(p Pos, format string, args ...any) *engine.Error {
	return invalid("syntax error at line %d, column %d: %s", p.Line, p.Col, fmt.Sprintf(format, args...))
}
