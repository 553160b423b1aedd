// Package handler is the guest SDK for twinlog WebAssembly handlers: a
// handler is an ordinary small Go package (package main) built with the stock
// toolchain,
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o comfort.wasm ./comfort
//
// that registers its function in init:
//
//	func init() {
//		handler.Handle(func(e *handler.Event) error {
//			room, _ := handler.PropertyFloat(e.Twin, "temperature")
//			return e.Patch(e.Twin, handler.Replace("comfort", 100-room))
//		})
//	}
//
//	func main() {}
//
// The host calls the handler once per batch of events; Handle's function is
// called for each event of the batch in log order. Reads (Twin, Property,
// Relationships, Query) see one consistent snapshot of the graph taken after
// the batch's events were applied, plus the invocation's own earlier patches
// (for root properties). Writes (Event.Patch, Event.SendTelemetry) are queued
// and applied by the host after the invocation returns, through the normal
// validated write path, each carrying the triggering event as its causation.
//
// Handlers must be deterministic: use Event.Time, never the wall clock, and
// Event.Seed for randomness. Strings and byte slices of an Event are valid
// only during the call that delivered it.
package handler

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"

	"github.com/twinlog/twinlog/wasm-handlers/abi"
)

// Event is one event delivered to a handler.
type Event struct {
	abi.Event
	index uint32
}

// ErrNotFound is returned by reads of a twin, property or relationship that
// does not exist.
var ErrNotFound = errors.New("handler: not found")

// ErrLimit is returned when the invocation exceeded one of its limits (too
// many or too large outputs); the invocation will fail.
var ErrLimit = errors.New("handler: limit exceeded")

var (
	perEvent func(*Event) error
	perBatch func([]Event) error
)

// Handle registers f to be called for every event, in log order. Call it
// from init.
func Handle(f func(e *Event) error) { perEvent = f }

// HandleBatch registers f to be called once per batch. Call it from init.
func HandleBatch(f func(batch []Event) error) { perBatch = f }

// Relationship is a relationship of a twin as returned by Outgoing and
// Incoming: its id, name, and the twin at the other end.
type Relationship = abi.Relationship

// Outgoing returns the relationships of twin named name ("" for all).
func Outgoing(twin, name string) ([]Relationship, error) { return relationships(twin, name, 0) }

// Incoming returns the relationships targeting twin named name ("" for
// all); Peer is each one's source.
func Incoming(twin, name string) ([]Relationship, error) { return relationships(twin, name, 1) }

// PropertyFloat returns a numeric root property of a twin.
func PropertyFloat(twin, name string) (float64, error) {
	b, err := property(twin, name)
	if err != nil {
		return 0, err
	}
	return parseFloat(b)
}

// parseFloat is strconv.ParseFloat of b. Numbers of at most 15 digits,
// without an exponent and at most 22 after the point, as properties
// usually are, it computes as strconv's exact path does (an integer
// mantissa divided by an exact power of ten, correctly rounded) without
// its general parser, slow in a guest; others go to strconv.
func parseFloat(b []byte) (float64, error) {
	i, neg := 0, false
	if len(b) > 0 && b[0] == '-' {
		i, neg = 1, true
	}
	var mant uint64
	digits, frac, point := 0, 0, false
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			mant = mant*10 + uint64(c-'0')
			digits++
			if point {
				frac++
			}
		case c == '.' && !point:
			point = true
		default:
			digits = 0 // not this simple form
			i = len(b)
		}
	}
	if digits == 0 || digits > 15 || frac > 22 || point && frac == 0 || b[len(b)-1] == '.' {
		f, err := strconv.ParseFloat(aliasString(b), 64)
		if err != nil {
			// The error keeps the text: not the scratch buffer's.
			_, err = strconv.ParseFloat(string(b), 64)
		}
		return f, err
	}
	f := float64(mant) / pow10[frac]
	if neg {
		f = -f
	}
	return f, nil
}

// pow10 are the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
	1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// PropertyString returns a string root property of a twin.
func PropertyString(twin, name string) (string, error) {
	b, err := property(twin, name)
	if err != nil {
		return "", err
	}
	return unquote(b)
}

// unquote returns the JSON string b: its text as it is when it is plain
// printable ASCII without escapes, else as encoding/json decodes it.
func unquote(b []byte) (string, error) {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && isPlainText(b[1:len(b)-1]) {
		return string(b[1 : len(b)-1]), nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", err
	}
	return s, nil
}

// PropertyBool returns a boolean root property of a twin.
func PropertyBool(twin, name string) (bool, error) {
	b, err := property(twin, name)
	if err != nil {
		return false, err
	}
	return string(b) == "true", nil
}

// Op is one JSON Patch operation.
type Op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// Replace returns a one-operation JSON Patch setting root property name to
// v ("add", which creates or replaces).
func Replace(name string, v any) []byte { return PatchOf(Op{Op: "add", Path: "/" + name, Value: v}) }

// PatchOf encodes ops as a JSON Patch document.
func PatchOf(ops ...Op) []byte {
	b := make([]byte, 0, 32*len(ops)+2)
	b = append(b, '[')
	for i, op := range ops {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"op":`...)
		b = appendQuoted(b, op.Op)
		b = append(b, `,"path":`...)
		b = appendQuoted(b, op.Path)
		if op.Value != nil {
			b = append(b, `,"value":`...)
			b = appendValue(b, op.Value)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendValue encodes v as JSON: common scalars directly (encoding/json
// is slow in a WebAssembly guest), anything else with encoding/json.
func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case float64:
		if !math.IsInf(v, 0) && !math.IsNaN(v) {
			return appendFloat(b, v)
		}
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case bool:
		return strconv.AppendBool(b, v)
	case string:
		if isPlain(v) {
			return appendQuoted(b, v)
		}
	case json.RawMessage:
		return append(b, v...)
	}
	j, err := json.Marshal(v)
	if err != nil {
		panic(err) // only unencodable values (channels, NaN) get here: a handler bug
	}
	return append(b, j...)
}

// appendFloat formats like encoding/json: shortest representation,
// exponent only for very large or small magnitudes.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		j, _ := json.Marshal(f) // rare: leave the exponent form to encoding/json
		return append(b, j...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// appendQuoted appends s quoted: between quotes as it is when it is plain
// (strconv's quoting, which checks every rune, is slow in a guest),
// else as strconv.AppendQuote quotes it.
func appendQuoted(b []byte, s string) []byte {
	if !isPlain(s) {
		return strconv.AppendQuote(b, s)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// isPlainText reports whether b is printable ASCII without quotes or
// backslashes: a JSON string's text needing no decoding.
func isPlainText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// isPlain reports whether s is printable ASCII without characters
// encoding/json escapes, so strconv.Quote and JSON agree.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// NumberMembers returns the members of a flat JSON object whose values are
// numbers, such as the telemetry body {"temperature": 21.5, "co2": 700};
// members of other types are skipped. It is much faster in a guest than
// encoding/json. ok is false when b is not a JSON object.
func NumberMembers(b []byte) (m map[string]float64, ok bool) {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '{' {
		return nil, false
	}
	m = map[string]float64{}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return m, skipSpace(b, i+1) == len(b)
	}
	for {
		if i == len(b) || b[i] != '"' {
			return nil, false
		}
		end := i + 1
		for end < len(b) && b[end] != '"' && b[end] != '\\' {
			end++
		}
		if end == len(b) || b[end] == '\\' {
			return numberMembersSlow(b)
		}
		key := string(b[i+1 : end])
		i = skipSpace(b, end+1)
		if i == len(b) || b[i] != ':' {
			return nil, false
		}
		i = skipSpace(b, i+1)
		if i == len(b) || b[i] != '-' && (b[i] < '0' || b[i] > '9') {
			return numberMembersSlow(b)
		}
		end = i
		for end < len(b) && (b[end] >= '0' && b[end] <= '9' || b[end] == '-' || b[end] == '+' || b[end] == '.' || b[end] == 'e' || b[end] == 'E') {
			end++
		}
		f, err := parseFloat(b[i:end])
		if err != nil {
			return nil, false
		}
		m[key] = f
		i = skipSpace(b, end)
		if i == len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return m, skipSpace(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
}

func numberMembersSlow(b []byte) (map[string]float64, bool) {
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil || all == nil {
		return nil, false
	}
	m := map[string]float64{}
	for k, v := range all {
		if f, ok := v.(float64); ok {
			m[k] = f
		}
	}
	return m, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// Round returns v rounded to d decimals, so computed values print and
// compare exactly.
func Round(v float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(v*p) / p
}

func run(input []byte) error {
	n, err := abi.NewReader(input, nil).Batch()
	if err != nil {
		return err
	}
	if cap(events) < n {
		events = make([]Event, n)
	}
	events = events[:n]
	off := abi.BatchHeaderSize
	for i := range events {
		events[i].index = uint32(i)
		var ok bool
		if off, ok = decodeEvent(input, off, &events[i].Event); !ok {
			return abi.ErrMalformed
		}
	}
	if perBatch != nil {
		return perBatch(events)
	}
	if perEvent == nil {
		return errors.New("no handler registered: call handler.Handle in init")
	}
	for i := range events {
		if err := perEvent(&events[i]); err != nil {
			return err
		}
	}
	return nil
}

var events []Event

func codeErr(code int32) error {
	switch code {
	case abi.ErrNotFound:
		return ErrNotFound
	case abi.ErrLimit:
		return ErrLimit
	case abi.ErrInvalid:
		return errors.New("handler: invalid host call")
	default:
		return errors.New(lastError())
	}
}
