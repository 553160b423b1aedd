package dtdl

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors callers branch on.
var (
	// ErrUnsupportedVersion is wrapped when a document uses a DTDL version
	// other than 2 or 3.
	ErrUnsupportedVersion = errors.New("dtdl: unsupported DTDL version")
	// ErrNotFound is returned when a model is not in the registry.
	ErrNotFound = errors.New("dtdl: model not found")
	// ErrReferenced is returned when removing a model another model uses.
	ErrReferenced = errors.New("dtdl: model is referenced by another model")
	// ErrNotConform is wrapped by every instance validation failure.
	ErrNotConform = errors.New("dtdl: value does not conform to its schema")
)

// Diagnostic is one problem found in a model.
type Diagnostic struct {
	// Code is the stable problem code, named like the ValidationID of the
	// reference DTDL parser without its "dtmi:dtdl:parsingError:" prefix,
	// such as "invalidId" or "duplicateDefinition".
	Code string
	// ElementID is the DTMI of the element at fault, when known.
	ElementID string
	// Property is the DTDL property at fault, such as "schema", when known.
	Property string
	// Message is a readable explanation.
	Message string
	// File names the document, when known.
	File string
	// Line is the 1-based line in the document, when known.
	Line int
}

// String formats the diagnostic as "file:line: code: message (element, property)".
func (d Diagnostic) String() string {
	var b strings.Builder
	if d.File != "" {
		b.WriteString(d.File)
		if d.Line > 0 {
			fmt.Fprintf(&b, ":%d", d.Line)
		}
		b.WriteString(": ")
	}
	b.WriteString(d.Code)
	b.WriteString(": ")
	b.WriteString(d.Message)
	if d.ElementID != "" || d.Property != "" {
		b.WriteString(" (")
		b.WriteString(d.ElementID)
		if d.Property != "" {
			if d.ElementID != "" {
				b.WriteString(" ")
			}
			b.WriteString("property " + d.Property)
		}
		b.WriteString(")")
	}
	return b.String()
}

// ValidationError reports that a batch of models was rejected.
type ValidationError struct {
	// Diagnostics lists every problem found, in document order.
	Diagnostics []Diagnostic
}

// Error summarizes the diagnostics.
func (e *ValidationError) Error() string {
	switch len(e.Diagnostics) {
	case 0:
		return "dtdl: invalid models"
	case 1:
		return "dtdl: invalid model: " + e.Diagnostics[0].String()
	}
	return fmt.Sprintf("dtdl: invalid models: %s (and %d more)", e.Diagnostics[0].String(), len(e.Diagnostics)-1)
}

// Unwrap returns ErrUnsupportedVersion when a diagnostic is about the
// language version, so errors.Is works.
func (e *ValidationError) Unwrap() error {
	for _, d := range e.Diagnostics {
		if d.Code == "unsupportedVersion" {
			return ErrUnsupportedVersion
		}
	}
	return nil
}
