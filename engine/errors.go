package engine

import (
	"errors"
	"fmt"
)

// Kind classifies an Error for the edge that reports it (HTTP status, CLI exit
// code).
type Kind uint8

// Kinds of domain errors.
const (
	KindInternal     Kind = iota // a bug or an I/O failure: 500
	KindInvalid                  // the request is malformed or violates the model: 400
	KindUnauthorized             // no or bad credentials: 401
	KindForbidden                // credentials lack the permission: 403
	KindNotFound                 // the addressed thing does not exist (or is secret): 404
	KindMethod                   // the verb is not supported on the resource: 405
	KindConflict                 // the write conflicts with current state: 409
	KindPrecondition             // If-Match / If-None-Match failed: 412
	KindTooLarge                 // the request exceeds a size limit: 413
	KindUnsupported              // media type or api-version not supported: 415 / 400
	KindThrottled                // back off and retry: 429
	KindUnavailable              // not ready (starting, halted): 503
	KindTimeout                  // the operation exceeded its budget: 408 / 504
)

// Error is the one typed error at the domain edge. Code is the stable,
// ADT-compatible error code clients branch on ("DigitalTwinNotFound",
// "ValidationFailed", ...); Message is for people.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	// Details optionally carries sub-errors (for example one per DTDL
	// diagnostic).
	Details []Error
	// Err is the underlying cause, if any; it is not shown to clients.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind and code with a formatted message.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error, classifying anything else as internal.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, ErrHalted) {
		return &Error{Kind: KindUnavailable, Code: "ServiceUnavailable", Message: "the engine is halted; see the server log", Err: err}
	}
	if errors.Is(err, ErrTooManyConflicts) {
		return &Error{Kind: KindThrottled, Code: "TooManyRequests", Message: "too many concurrent writes to the same twin; retry", Err: err}
	}
	return &Error{Kind: KindInternal, Code: "InternalServerError", Message: "internal error", Err: err}
}
