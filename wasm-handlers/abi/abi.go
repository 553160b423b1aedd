// Package abi is version 1 of the contract between the twinlog host and a
// WebAssembly handler: the names of the functions each side provides, the
// compact binary encoding of a batch of events, and the result codes. It is
// pure Go with no dependencies, so the host (wasm-handlers/host) and the guest
// SDK (wasm-handlers/handler, built for GOOS=wasip1) share one definition.
// README.md beside this directory documents the ABI for people.
package abi

import (
	"encoding/binary"
	"errors"
)

// Version is the ABI version a guest declares by exporting ExportABI.
const Version = 1

// Names of the functions a guest exports.
const (
	// ExportABI is `twinlog_abi_v1() -> i32`: returns Version. Its presence
	// marks a module as a twinlog handler.
	ExportABI = "twinlog_abi_v1"
	// ExportAlloc is `twinlog_alloc(size u32) -> ptr u32`: returns a guest
	// buffer of at least size bytes that stays valid until the next call
	// to ExportAlloc. The host writes each batch there.
	ExportAlloc = "twinlog_alloc"
	// ExportHandle is `twinlog_handle(ptr u32, len u32) -> i32`: processes
	// the batch encoded at ptr. It returns ResultOK, or ResultFailed after
	// calling the host's "fail" import with a message.
	ExportHandle = "twinlog_handle"
	// ExportInitialize is the reactor initializer Go's c-shared wasip1
	// build emits; the host runs it once per instance.
	ExportInitialize = "_initialize"
)

// HostModule is the import module name of the host functions.
const HostModule = "twinlog"

// Names of the host functions (module HostModule). Strings are passed as
// (ptr u32, len u32) in guest memory. Functions that return bytes take an
// output buffer (ptr u32, cap u32) and return the length of the result: when
// it exceeds cap nothing was written and the guest calls again with a buffer
// of at least that size. Negative returns are the Err* codes below.
const (
	// HostTwin: twin(id, out) -> n. The twin's ADT JSON.
	HostTwin = "twin"
	// HostProperty: property(id, name, out) -> n. A root property's JSON
	// value, including this invocation's own earlier patches.
	HostProperty = "property"
	// HostModel: model(id, out) -> n. The twin's model id.
	HostModel = "model"
	// HostRelationships: relationships(id, name, dir i32, out) -> n.
	// Relationships of twin id named name ("" for all), outgoing (dir 0)
	// or incoming (dir 1), encoded as a Relationship list (see
	// AppendRelationships).
	HostRelationships = "relationships"
	// HostQuery: query(text, out) -> n. A read-only ADT query over the
	// snapshot; the result is a JSON array of rows.
	HostQuery = "query"
	// HostPatch: patch(cause u32, id, patch) -> code. Queues a JSON Patch
	// of twin id, caused by the batch's event at index cause.
	HostPatch = "patch"
	// HostTelemetry: telemetry(cause u32, id, body) -> code. Queues a
	// telemetry message from twin id.
	HostTelemetry = "telemetry"
	// HostLog: log(level i32, msg). Level is slog's (-4 debug ... 8 error).
	HostLog = "log"
	// HostMetric: metric(name, value f64). Sets a handler gauge shown in
	// the handler's status.
	HostMetric = "metric"
	// HostConfig: config(out) -> n. The manifest's config JSON ("{}").
	HostConfig = "config"
	// HostFail: fail(msg). The message of a failing ExportHandle call.
	HostFail = "fail"
	// HostLastError: last_error(out) -> n. The message of the last host
	// call that returned ErrFailed.
	HostLastError = "last_error"
)

// Result codes.
const (
	ResultOK     = 0
	ResultFailed = 1

	// ErrNotFound: the twin, property or relationship does not exist.
	ErrNotFound = -1
	// ErrFailed: the call failed; last_error has the message.
	ErrFailed = -2
	// ErrLimit: an output or read limit of the invocation was exceeded;
	// the invocation will fail.
	ErrLimit = -3
	// ErrInvalid: bad arguments (cause index out of range, bad memory).
	ErrInvalid = -4
)

// Kind classifies an event for handlers that switch on it without string
// compares.
type Kind uint8

// Event kinds.
const (
	KindOther Kind = iota
	KindTelemetry
	KindTwinCreated
	KindTwinReplaced
	KindTwinPatched
	KindTwinDeleted
	KindRelationshipCreated
	KindRelationshipReplaced
	KindRelationshipPatched
	KindRelationshipDeleted
)

var kindNames = [...]string{"", "telemetry", "twin.created", "twin.replaced", "twin.patched", "twin.deleted",
	"relationship.created", "relationship.replaced", "relationship.patched", "relationship.deleted"}

// KindOf returns the kind of an event type.
func KindOf(typ string) Kind {
	for i, n := range kindNames[1:] {
		if n == typ {
			return Kind(i + 1)
		}
	}
	return KindOther
}

// String returns the event type of k.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return ""
}

// Event is one event of a batch as the guest sees it.
//
// Batch encoding (little endian; str is u32 length + bytes; list is u32
// count + items):
//
//	batch := u32 Version, u32 count, count × event
//	event := u64 Position, i64 Time, u64 Seed, u32 Hop, u8 Kind,
//	         str Type, str Twin, str Model, str Component, str Relationship,
//	         list<str> Changed, str Payload
type Event struct {
	// Position is the event's log position; its decimal form is the event
	// id that outputs carry as their causation.
	Position uint64
	// Time is the event's log time, Unix nanoseconds: the only clock a
	// handler should use.
	Time int64
	// Seed is derived from the event id: a deterministic random seed.
	Seed uint64
	// Hop is how many handler outputs lie between the user's write and
	// this event (0 for a user's write or device telemetry).
	Hop  uint32
	Kind Kind
	// Type is the event type ("telemetry", "twin.patched", ...).
	Type string
	// Twin is the twin the event is about (the source of a relationship).
	Twin string
	// Model is the twin's model as of the snapshot.
	Model string
	// Component is the telemetry's component, "" for the twin root.
	Component string
	// Relationship is the relationship's name for relationship events.
	Relationship string
	// Changed are the names of the root properties a twin.patched set or
	// removed.
	Changed []string
	// Payload is the body: the telemetry message JSON; the applied JSON
	// Patch of twin.patched; the twin's JSON for created and replaced; the
	// relationship JSON for relationship events.
	Payload []byte
}

// Seed returns the deterministic seed of the event at position pos
// (splitmix64 of the position).
func Seed(pos uint64) uint64 {
	z := pos + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// AppendBatchHeader starts a batch of count events.
func AppendBatchHeader(dst []byte, count int) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, Version)
	return binary.LittleEndian.AppendUint32(dst, uint32(count))
}

// EventSize returns the length of the encoding of e.
func EventSize(e *Event) int {
	n := eventFixed + 6*4 + len(e.Type) + len(e.Twin) + len(e.Model) + len(e.Component) + len(e.Relationship) + 4 + len(e.Payload)
	for _, c := range e.Changed {
		n += 4 + len(c)
	}
	return n
}

// BatchHeaderSize is the length of a batch header.
const BatchHeaderSize = 8

// AppendEvent appends the encoding of e.
func AppendEvent(dst []byte, e *Event) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, e.Position)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(e.Time))
	dst = binary.LittleEndian.AppendUint64(dst, e.Seed)
	dst = binary.LittleEndian.AppendUint32(dst, e.Hop)
	dst = append(dst, byte(e.Kind))
	dst = AppendString(dst, e.Type)
	dst = AppendString(dst, e.Twin)
	dst = AppendString(dst, e.Model)
	dst = AppendString(dst, e.Component)
	dst = AppendString(dst, e.Relationship)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(e.Changed)))
	for _, c := range e.Changed {
		dst = AppendString(dst, c)
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(e.Payload)))
	return append(dst, e.Payload...)
}

// AppendString appends a length-prefixed string.
func AppendString(dst []byte, s string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// ErrMalformed is returned for an encoding that is truncated or
// inconsistent.
var ErrMalformed = errors.New("abi: malformed encoding")

// Reader decodes an encoding. Strings are made by the function given to
// NewReader, so a guest can alias its input buffer instead of copying.
type Reader struct {
	b   []byte
	str func([]byte) string
	err error
}

// NewReader returns a reader over b. str converts byte slices of b to
// strings; nil means copying with string(b).
func NewReader(b []byte, str func([]byte) string) *Reader {
	if str == nil {
		str = func(b []byte) string { return string(b) }
	}
	return &Reader{b: b, str: str}
}

// Err returns the first decoding error.
func (r *Reader) Err() error { return r.err }

func (r *Reader) take(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if uint64(len(r.b)) < n {
		r.err = ErrMalformed
		r.b = nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// Uint32 reads a u32.
func (r *Reader) Uint32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

// Uint64 reads a u64.
func (r *Reader) Uint64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// Bytes reads a length-prefixed byte string, aliasing the input.
func (r *Reader) Bytes() []byte { return r.take(uint64(r.Uint32())) }

// String reads a length-prefixed string.
func (r *Reader) String() string {
	b := r.Bytes()
	if len(b) == 0 {
		return ""
	}
	return r.str(b)
}

// Batch reads a batch header and returns the event count.
func (r *Reader) Batch() (int, error) {
	if v := r.Uint32(); r.err == nil && v != Version {
		return 0, ErrMalformed
	}
	n := r.Uint32()
	if r.err != nil {
		return 0, r.err
	}
	// Every event takes at least 61 bytes: bound n before allocating.
	if uint64(n)*61 > uint64(len(r.b)) {
		return 0, ErrMalformed
	}
	return int(n), nil
}

// eventFixed is the size of an event's fixed part: Position, Time, Seed,
// Hop and Kind.
const eventFixed = 8 + 8 + 8 + 4 + 1

// Event reads one event into e; its Payload aliases the input.
//
// It reads the event in one pass over a local slice, without a call per
// field: in a WebAssembly guest, where Go's calls are expensive, decoding
// was most of the cost of handling a simple event.
func (r *Reader) Event(e *Event) error {
	if r.err != nil {
		return r.err
	}
	b := r.b
	if len(b) < eventFixed {
		return r.malformed()
	}
	e.Position = binary.LittleEndian.Uint64(b)
	e.Time = int64(binary.LittleEndian.Uint64(b[8:]))
	e.Seed = binary.LittleEndian.Uint64(b[16:])
	e.Hop = binary.LittleEndian.Uint32(b[24:])
	e.Kind = Kind(b[28])
	b = b[eventFixed:]
	// Type, Twin, Model, Component, Relationship.
	var strs [5][]byte
	for i := range strs {
		var ok bool
		if strs[i], b, ok = cut(b); !ok {
			return r.malformed()
		}
	}
	if len(b) < 4 {
		return r.malformed()
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	b = b[4:]
	if n*4 > uint64(len(b)) {
		return r.malformed()
	}
	e.Changed = e.Changed[:0]
	for range n {
		c, rest, ok := cut(b)
		if !ok {
			return r.malformed()
		}
		e.Changed, b = append(e.Changed, r.string(c)), rest
	}
	payload, rest, ok := cut(b)
	if !ok {
		return r.malformed()
	}
	e.Payload, r.b = payload[:len(payload):len(payload)], rest
	// The type of a known kind is its name: no string to make.
	if k := e.Kind; k > KindOther && int(k) < len(kindNames) && string(strs[0]) == kindNames[k] {
		e.Type = kindNames[k]
	} else {
		e.Type = r.string(strs[0])
	}
	e.Twin = r.string(strs[1])
	e.Model = r.string(strs[2])
	e.Component = r.string(strs[3])
	e.Relationship = r.string(strs[4])
	return nil
}

// cut returns the length-prefixed byte string at the start of b and what
// follows it; ok is false when b is too short.
func cut(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	if n > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}

// string converts b with the reader's function; "" when empty.
func (r *Reader) string(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return r.str(b)
}

// malformed records that the input is malformed and returns the error.
func (r *Reader) malformed() error {
	r.err, r.b = ErrMalformed, nil
	return r.err
}

// Relationship is one entry of the relationships host call: the
// relationship's id and name, and the twin at its other end (the target of
// an outgoing relationship, the source of an incoming one).
type Relationship struct {
	ID, Name, Peer string
}

// AppendRelationships encodes rels as list<str ID, str Name, str Peer>.
func AppendRelationships(dst []byte, rels []Relationship) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(rels)))
	for _, r := range rels {
		dst = AppendString(dst, r.ID)
		dst = AppendString(dst, r.Name)
		dst = AppendString(dst, r.Peer)
	}
	return dst
}

// Relationships decodes a list made by AppendRelationships, in one pass
// like Event.
func (r *Reader) Relationships() ([]Relationship, error) {
	if r.err != nil {
		return nil, r.err
	}
	b := r.b
	if len(b) < 4 {
		return nil, r.malformed()
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	b = b[4:]
	if n*12 > uint64(len(b)) {
		return nil, r.malformed()
	}
	out := make([]Relationship, n)
	for i := range out {
		var f [3][]byte
		for k := range f {
			var ok bool
			if f[k], b, ok = cut(b); !ok {
				return nil, r.malformed()
			}
		}
		out[i] = Relationship{ID: r.string(f[0]), Name: r.string(f[1]), Peer: r.string(f[2])}
	}
	r.b = b
	return out, nil
}
