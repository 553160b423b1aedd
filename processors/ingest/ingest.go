package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/nats-io/nuid"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/schemas/dtdl"
)

// Layout says how points are laid out in the log; see the package doc.
type Layout uint8

// Layouts.
const (
	// LayoutBatch writes one twingraph "telemetry.batch" event per request.
	LayoutBatch Layout = iota
	// LayoutEvents writes one twingraph "telemetry" event per point.
	LayoutEvents
)

// Layouts lists every layout, the default first.
var Layouts = []Layout{LayoutBatch, LayoutEvents}

// String returns the layout's name: "batch" or "events".
func (l Layout) String() string {
	switch l {
	case LayoutBatch:
		return "batch"
	case LayoutEvents:
		return "events"
	}
	return "layout(" + strconv.Itoa(int(l)) + ")"
}

// Options configures an Ingester. The zero value is valid.
type Options struct {
	// Layout is the log layout of points. Default LayoutBatch.
	Layout Layout
	// Shards is the number of twingraph.TelemetryBatchStream streams
	// LayoutBatch spreads its events over. Default 16.
	Shards int
	// MaxPoints bounds the points of one request. Default 100,000.
	MaxPoints int
	// MaxBodyBytes bounds one request body after decompression. Default
	// 16 MiB.
	MaxBodyBytes int
	// MaxInflightBytes bounds the bytes held by requests being read,
	// validated or appended, all requests together (each body byte is
	// counted twice: once as received, once as encoded for the log). A
	// request that would exceed it gets ErrBusy. Default 256 MiB.
	MaxInflightBytes int64
	// MaxLag bounds how many log positions the slowest registered consumer
	// (see AddConsumer) may trail the last append before requests get
	// ErrBusy. A position is a point with LayoutEvents, a whole request
	// with LayoutBatch. Default 1,000,000 with LayoutEvents, 10,000 with
	// LayoutBatch.
	MaxLag uint64
	// AllowUndeclared accepts values whose name the twin's model does not
	// declare as telemetry (they are not validated). Default false: such a
	// point is rejected.
	AllowUndeclared bool
}

// Validate reports invalid options.
func (o *Options) Validate() error {
	if o.Shards < 0 || o.MaxPoints < 0 || o.MaxBodyBytes < 0 || o.MaxInflightBytes < 0 {
		return errors.New("ingest: negative option")
	}
	if o.Layout > LayoutEvents {
		return fmt.Errorf("ingest: unknown layout %d", o.Layout)
	}
	return nil
}

func (o *Options) defaults() {
	if o.Shards == 0 {
		o.Shards = 16
	}
	if o.MaxPoints == 0 {
		o.MaxPoints = 100_000
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 16 << 20
	}
	if o.MaxInflightBytes == 0 {
		o.MaxInflightBytes = 256 << 20
	}
	if o.MaxLag == 0 {
		o.MaxLag = 1_000_000
		if o.Layout == LayoutBatch {
			o.MaxLag = 10_000
		}
	}
}

// Devices resolves device ids to the twins that mirror them.
type Devices interface {
	// TwinOf returns the twin id of a registered device.
	TwinOf(deviceID string) (twinID string, ok bool)
}

// Consumer is a reader of the log whose lag throttles ingestion, such as
// the engine (its projections).
type Consumer interface {
	// Applied returns the position of the last event it has processed.
	Applied() uint64
}

// Errors returned by Ingest, as *engine.Error so the HTTP edge maps them.
var (
	// ErrBusy means the in-flight budget is spent or consumers lag: retry
	// later (HTTP 429 with Retry-After).
	ErrBusy = &engine.Error{Kind: engine.KindThrottled, Code: "TooManyRequests",
		Message: "ingestion is at capacity; retry after the Retry-After delay"}
)

// Report is the outcome of one ingest request.
type Report struct {
	// Accepted is the number of points appended.
	Accepted int `json:"accepted"`
	// Rejected lists the points not appended and why, by index.
	Rejected []Rejection `json:"rejected,omitempty"`
	// Position is the log position of the last appended event, 0 when
	// nothing was appended. Reads waiting for it see the points.
	Position uint64 `json:"position,omitempty"`
}

// Rejection explains why one point was not appended.
type Rejection struct {
	// Index is the point's 0-based place in the request.
	Index int `json:"index"`
	// Code is an ADT-style error code: InvalidJson, DigitalTwinNotFound,
	// DeviceNotFound, ComponentNotFound, UnknownTelemetry, ValidationFailed,
	// InvalidArgument.
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Ingester validates and appends telemetry batches. It is safe for
// concurrent use.
type Ingester struct {
	eng   *engine.Engine
	graph *twingraph.Graph
	opts  Options

	inflight atomic.Int64
	last     atomic.Uint64 // position of the last append
	shard    atomic.Uint32
	points   atomic.Uint64 // accepted points, for metrics

	models atomic.Pointer[modelCache]

	mu struct {
		sync.Mutex
		devices   Devices
		consumers []Consumer
	}
}

// modelCache maps twin ids to models for one twingraph.Snapshot.TwinSet:
// a twin that received points before is resolved without a search of the
// graph's id tree, as long as no twin was created, deleted or changed
// model since.
type modelCache struct {
	set any
	m   sync.Map // twin id → model
	n   atomic.Int64
}

// maxCachedModels bounds a modelCache's entries.
const maxCachedModels = 1 << 17

// modelCacheFor returns the cache of snap's twin set.
func (in *Ingester) modelCacheFor(snap *twingraph.Snapshot) *modelCache {
	set := snap.TwinSet()
	if c := in.models.Load(); c != nil && c.set == set {
		return c
	}
	c := &modelCache{set: set}
	in.models.Store(c)
	return c
}

// model returns the model of twin in snap, whose TwinSet is c's.
func (c *modelCache) model(snap *twingraph.Snapshot, twin string) (string, bool) {
	if m, ok := c.m.Load(twin); ok {
		return m.(string), true
	}
	tw, ok := snap.Twin(twin)
	if !ok {
		return "", false
	}
	if c.n.Add(1) <= maxCachedModels {
		// twin may view the request's body.
		c.m.Store(strings.Clone(twin), tw.Model)
	}
	return tw.Model, true
}

// New returns an Ingester appending through eng and validating against
// graph.
func New(eng *engine.Engine, graph *twingraph.Graph, opts Options) (*Ingester, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.defaults()
	in := &Ingester{eng: eng, graph: graph, opts: opts}
	in.mu.consumers = []Consumer{eng}
	return in, nil
}

// SetDevices sets the registry resolving points' deviceId.
func (in *Ingester) SetDevices(d Devices) {
	in.mu.Lock()
	in.mu.devices = d
	in.mu.Unlock()
}

// AddConsumer adds a log reader whose lag throttles ingestion. The engine
// is always one.
func (in *Ingester) AddConsumer(c Consumer) {
	in.mu.Lock()
	in.mu.consumers = append(in.mu.consumers, c)
	in.mu.Unlock()
}

// Options returns the effective options.
func (in *Ingester) Options() Options { return in.opts }

// Points returns the number of points accepted since start.
func (in *Ingester) Points() uint64 { return in.points.Load() }

// Inflight returns the bytes currently reserved by requests.
func (in *Ingester) Inflight() int64 { return in.inflight.Load() }

// reserve takes n bytes of the in-flight budget, or returns false.
func (in *Ingester) reserve(n int64) bool {
	if in.inflight.Add(n) > in.opts.MaxInflightBytes {
		in.inflight.Add(-n)
		return false
	}
	return true
}

func (in *Ingester) release(n int64) { in.inflight.Add(-n) }

// Admit reports ErrBusy when consumers trail the last append by more than
// MaxLag. Cheap; call it before reading a request.
func (in *Ingester) Admit() error {
	last := in.last.Load()
	in.mu.Lock()
	cs := in.mu.consumers
	in.mu.Unlock()
	for _, c := range cs {
		if a := c.Applied(); last > a && last-a > in.opts.MaxLag {
			return ErrBusy
		}
	}
	return nil
}

func tooLarge(max int) error {
	return engine.Errorf(engine.KindTooLarge, "PayloadTooLarge", "the batch is larger than %d bytes", max)
}

// maxPooled is the largest buffer kept for reuse.
const maxPooled = 4 << 20

// batchHeaderRoom is the most a telemetry.batch header takes: its magic
// byte and the count.
const batchHeaderRoom = 1 + binary.MaxVarintLen64

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

// IngestReader reads a request body from r (gunzipping it when gzipped),
// then ingests it like Ingest. Bytes are reserved from the in-flight budget
// as they are read, so a flood is refused with ErrBusy before it is
// buffered.
func (in *Ingester) IngestReader(ctx context.Context, actor string, r io.Reader, gzipped bool) (*Report, error) {
	if err := in.Admit(); err != nil {
		return nil, err
	}
	var reserved int64
	defer func() { in.release(reserved) }()
	if gzipped {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, engine.Errorf(engine.KindInvalid, "InvalidArgument", "the gzip body is not valid: %v", err)
		}
		defer zr.Close()
		r = zr
	}
	bp := bufPool.Get().(*[]byte)
	buf := (*bp)[:0]
	defer func() {
		if cap(buf) <= maxPooled {
			*bp = buf[:0]
			bufPool.Put(bp)
		}
	}()
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		// Reserve twice the buffer: the body and its encoding for the log.
		if want := int64(cap(buf))*2 - reserved; want > 0 {
			if !in.reserve(want) {
				return nil, ErrBusy
			}
			reserved += want
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > in.opts.MaxBodyBytes {
			return nil, tooLarge(in.opts.MaxBodyBytes)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, engine.Errorf(engine.KindTooLarge, "PayloadTooLarge", "the request body is too large")
			}
			if gzipped {
				return nil, engine.Errorf(engine.KindInvalid, "InvalidArgument", "the gzip body is not valid: %v", err)
			}
			return nil, fmt.Errorf("read body: %w", err)
		}
	}
	return in.ingest(ctx, actor, buf)
}

// Ingest validates the points of body (a JSON array or NDJSON, see Decode)
// and appends the valid ones in one Append, returning once they are
// durable. Invalid points are listed in the report; a body that is not
// decodable at all, or has more than MaxPoints points, is an error and
// nothing is appended.
func (in *Ingester) Ingest(ctx context.Context, actor string, body []byte) (*Report, error) {
	if err := in.Admit(); err != nil {
		return nil, err
	}
	if len(body) > in.opts.MaxBodyBytes {
		return nil, tooLarge(in.opts.MaxBodyBytes)
	}
	n := int64(len(body)) * 2
	if !in.reserve(n) {
		return nil, ErrBusy
	}
	defer in.release(n)
	return in.ingest(ctx, actor, body)
}

// target is a twin as resolved for validation.
// Allow decides, for a point's twin and its model, whether the caller may
// send it telemetry (send) and whether it may know the twin exists (see).
type Allow func(twin, model string) (send, see bool)

type allowKey struct{}

// WithAllow returns ctx carrying allow: ingestion through it accepts only the
// points allow lets the caller send, and reports the others as
// DigitalTwinNotFound (twins the caller may not see) or Forbidden. Without
// one every existing twin may be sent to.
func WithAllow(ctx context.Context, allow Allow) context.Context {
	return context.WithValue(ctx, allowKey{}, allow)
}

type target struct {
	twin string
	itf  *dtdl.Interface
	err  *Rejection // set when the twin cannot take telemetry
}

func (in *Ingester) ingest(ctx context.Context, actor string, body []byte) (*Report, error) {
	if actor == "" {
		actor = "ingest"
	}
	rep := &Report{}
	allow, _ := ctx.Value(allowKey{}).(Allow)
	snap := in.graph.Snapshot()
	reg := snap.Models()
	models := in.modelCacheFor(snap)
	in.mu.Lock()
	devices := in.mu.devices
	in.mu.Unlock()
	// The targets of this request, by twin id (or NUL and device id):
	// values in one slice, found through a map sized for a batch of
	// mostly distinct twins.
	tlist := make([]target, 0, min(len(body)/64, 1024))
	targets := make(map[string]int, cap(tlist))
	resolve := func(p *Point) *target {
		key := p.Twin
		if p.Device != "" {
			key = "\x00" + p.Device
		}
		if i, ok := targets[key]; ok {
			return &tlist[i]
		}
		tlist = append(tlist, target{})
		t := &tlist[len(tlist)-1]
		switch {
		case p.Twin != "" && p.Device != "":
			t.err = &Rejection{Code: "InvalidArgument", Message: "a point names either twinId or deviceId, not both"}
		case p.Device != "":
			var ok bool
			if devices != nil {
				t.twin, ok = devices.TwinOf(p.Device)
			}
			if !ok {
				t.err = &Rejection{Code: "DeviceNotFound", Message: fmt.Sprintf("device %s is not registered", p.Device)}
			}
		case p.Twin != "":
			t.twin = p.Twin
		default:
			t.err = &Rejection{Code: "InvalidArgument", Message: "a point needs a twinId or a deviceId"}
		}
		if t.err == nil {
			model, ok := models.model(snap, t.twin)
			if !ok {
				t.err = &Rejection{Code: "DigitalTwinNotFound", Message: fmt.Sprintf("twin %s does not exist", t.twin)}
			} else if t.itf, ok = reg.Get(model); !ok {
				t.err = &Rejection{Code: "ModelNotFound", Message: fmt.Sprintf("the model %s of twin %s is not loaded", model, t.twin)}
			} else if allow != nil {
				switch send, see := allow(t.twin, model); {
				case !see:
					// As if it did not exist: the caller may not learn
					// that it does.
					t.err = &Rejection{Code: "DigitalTwinNotFound", Message: fmt.Sprintf("twin %s does not exist", t.twin)}
				case !send:
					t.err = &Rejection{Code: "Forbidden", Message: fmt.Sprintf("the caller may not send telemetry to twin %s", t.twin)}
				}
			}
		}
		targets[key] = len(tlist) - 1
		return t
	}

	arena := bufPool.Get().(*[]byte)
	out := (*arena)[:0]
	batch := in.opts.Layout == LayoutBatch
	if batch {
		// Room for the batch's header, written in front once the count is
		// known: the payload is the arena itself (the log does not keep
		// it), not a copy.
		out = out[:batchHeaderRoom]
	}
	defer func() {
		if cap(out) <= maxPooled {
			*arena = out[:0]
			bufPool.Put(arena)
		}
	}()
	type span struct {
		twin       string
		start, end int
	}
	var spans []span // LayoutEvents: one payload per point
	count := 0
	msgBase := ""
	var scratch, midBuf []byte
	var memo checkMemo
	tooMany := false
	err := Decode(body, func(p *Point) {
		if tooMany {
			return
		}
		if count+len(rep.Rejected) >= in.opts.MaxPoints {
			tooMany = true
			return
		}
		t := resolve(p)
		if t.err != nil {
			r := *t.err
			r.Index = p.Index
			rep.Rejected = append(rep.Rejected, r)
			return
		}
		if rej := in.check(&memo, t, p); rej != nil {
			rej.Index = p.Index
			rep.Rejected = append(rep.Rejected, *rej)
			return
		}
		mid := p.MessageID
		if mid == "" {
			if msgBase == "" {
				msgBase = nuid.Next() + "."
			}
			// The id is copied into the payload: build it in place.
			midBuf = strconv.AppendInt(append(midBuf[:0], msgBase...), int64(p.Index), 10)
			mid = unsafe.String(unsafe.SliceData(midBuf), len(midBuf))
		}
		scratch = appendBody(scratch[:0], p.Fields)
		start := len(out)
		if batch {
			out = twingraph.AppendTelemetryPoint(out, &twingraph.TelemetryPoint{Twin: t.twin, Component: p.Component, MessageID: mid, SourceTime: p.Time, Body: scratch})
		} else {
			out = appendTelemetryJSON(out, t.twin, p.Component, mid, p.Time, scratch)
			spans = append(spans, span{twin: t.twin, start: start, end: len(out)})
		}
		count++
	}, func(idx int, err error) {
		rep.Rejected = append(rep.Rejected, Rejection{Index: idx, Code: "InvalidJson", Message: err.Error()})
	})
	if err != nil {
		return nil, engine.Errorf(engine.KindInvalid, "InvalidJson", "the batch is not valid JSON: %v", err)
	}
	if tooMany {
		return nil, engine.Errorf(engine.KindTooLarge, "PayloadTooLarge", "the batch has more than %d points", in.opts.MaxPoints)
	}
	if count == 0 {
		if len(rep.Rejected) == 0 {
			return nil, engine.Errorf(engine.KindInvalid, "InvalidArgument", "the batch has no points")
		}
		return rep, nil
	}
	var events []event.Event
	if batch {
		// The count goes in front, now that it is known.
		var hdr [batchHeaderRoom]byte
		h := twingraph.AppendTelemetryBatchHeader(hdr[:0], count)
		payload := out[batchHeaderRoom-len(h):]
		copy(payload, h)
		shard := in.shard.Add(1) % uint32(in.opts.Shards)
		events = []event.Event{{Stream: twingraph.TelemetryBatchStream(int(shard)), Type: twingraph.TypeTelemetryBatch,
			Actor: actor, SchemaVersion: twingraph.TelemetryBatchSchemaVersion, Payload: payload}}
	} else {
		events = make([]event.Event, len(spans))
		for i, s := range spans {
			events[i] = event.Event{Stream: twingraph.TelemetryStream(s.twin), Type: twingraph.TypeTelemetry,
				Actor: actor, SchemaVersion: twingraph.SchemaVersion, Payload: out[s.start:s.end:s.end]}
		}
	}
	res, err := in.eng.Append(ctx, events)
	if err != nil {
		return nil, fmt.Errorf("append telemetry: %w", err)
	}
	for {
		old := in.last.Load()
		if res.Last <= old || in.last.CompareAndSwap(old, res.Last) {
			break
		}
	}
	in.points.Add(uint64(count))
	rep.Accepted = count
	rep.Position = res.Last
	return rep, nil
}

// checkMemo remembers the telemetry contents of the interface the last
// point was checked against, in the order of its fields: points of one
// model in a row mostly send the same fields in the same order.
type checkMemo struct {
	itf      *dtdl.Interface
	contents []*dtdl.Content
}

// content returns the content of itf named by field i of a point.
func (m *checkMemo) content(itf *dtdl.Interface, i int, name string) (*dtdl.Content, bool) {
	if m.itf != itf {
		m.itf, m.contents = itf, m.contents[:0]
	}
	if i < len(m.contents) && m.contents[i].Name == name {
		return m.contents[i], true
	}
	c, ok := itf.Content(name)
	if ok && c.Kind == dtdl.KindTelemetry && i <= len(m.contents) {
		m.contents = append(m.contents[:i], c)
	}
	return c, ok
}

// check validates one point against its twin's model.
func (in *Ingester) check(memo *checkMemo, t *target, p *Point) *Rejection {
	itf := t.itf
	if p.Component != "" {
		c, ok := itf.Component(p.Component)
		if !ok || c.ComponentSchema == nil {
			return &Rejection{Code: "ComponentNotFound", Message: fmt.Sprintf("twin %s has no component %s", t.twin, p.Component)}
		}
		itf = c.ComponentSchema
	}
	if p.Time != "" {
		if _, err := twingraph.ParseSourceTime(p.Time); err != nil {
			return &Rejection{Code: "InvalidArgument", Message: fmt.Sprintf("time %q is not an RFC 3339 date-time", p.Time)}
		}
	}
	if len(p.Fields) == 0 {
		return &Rejection{Code: "InvalidArgument", Message: "the point has no telemetry values"}
	}
	for i := range p.Fields {
		f := &p.Fields[i]
		c, ok := memo.content(itf, i, f.Name)
		if !ok || c.Kind != dtdl.KindTelemetry {
			if in.opts.AllowUndeclared {
				continue
			}
			return &Rejection{Code: "UnknownTelemetry", Message: fmt.Sprintf("model %s declares no telemetry %q", itf.ID, f.Name)}
		}
		if err := validate(c.Schema, f); err != nil {
			return &Rejection{Code: "ValidationFailed", Message: fmt.Sprintf("telemetry %q: %v", f.Name, err)}
		}
	}
	return nil
}

// validate checks a raw value against a schema without decoding it in the
// common cases (numbers, plain strings, booleans).
func validate(s *dtdl.Schema, f *Field) error {
	if s == nil {
		return nil
	}
	switch f.Kind {
	case KindNumber:
		return s.ValidateNumber(unsafe.String(unsafe.SliceData(f.Raw), len(f.Raw)))
	case KindBool:
		return s.Validate(f.Raw[0] == 't')
	case KindNull:
		return s.Validate(nil)
	case KindString:
		str, err := unquote(f.Raw)
		if err != nil {
			return err
		}
		return s.Validate(str)
	}
	dec := json.NewDecoder(bytes.NewReader(f.Raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	return s.Validate(v)
}

// appendBody appends the JSON object of fields, reusing their raw text.
func appendBody(dst []byte, fields []Field) []byte {
	dst = append(dst, '{')
	for i := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, fields[i].RawName...)
		dst = append(dst, ':')
		dst = append(dst, fields[i].Raw...)
	}
	return append(dst, '}')
}

// appendTelemetryJSON appends a twingraph.Telemetry payload.
func appendTelemetryJSON(dst []byte, twin, component, messageID, sourceTime string, body []byte) []byte {
	dst = append(dst, `{"twin":`...)
	dst = appendJSONString(dst, twin)
	if component != "" {
		dst = append(dst, `,"component":`...)
		dst = appendJSONString(dst, component)
	}
	dst = append(dst, `,"messageId":`...)
	dst = appendJSONString(dst, messageID)
	if sourceTime != "" {
		dst = append(dst, `,"sourceTime":`...)
		dst = appendJSONString(dst, sourceTime)
	}
	dst = append(dst, `,"body":`...)
	dst = append(dst, body...)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
