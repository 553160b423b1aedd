package mqtt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/devices"
	"github.com/twinlog/twinlog/processors/ingest"
)

// Options configures a Gateway. The zero value is valid.
type Options struct {
	// MaxBatchPoints bounds the points of one append (one ingest call).
	// Default 10,000.
	MaxBatchPoints int
	// MaxBatchBytes bounds the encoded points of one append. Default 4 MiB.
	MaxBatchBytes int
	// MaxPendingPoints bounds the points queued for appending; a message
	// arriving beyond it blocks its connection's reader (TCP backpressure)
	// until the queue drains. Default 100,000.
	MaxPendingPoints int
	// Flushers is how many appends may be in flight at once; completions
	// (acknowledgements) stay in arrival order. Default 2.
	Flushers int
	// Logger receives reports. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports invalid options.
func (o *Options) Validate() error {
	if o.MaxBatchPoints < 0 || o.MaxBatchBytes < 0 || o.MaxPendingPoints < 0 || o.Flushers < 0 {
		return errors.New("mqtt: negative option")
	}
	return nil
}

func (o *Options) defaults() {
	if o.MaxBatchPoints == 0 {
		o.MaxBatchPoints = 10_000
	}
	if o.MaxBatchBytes == 0 {
		o.MaxBatchBytes = 4 << 20
	}
	if o.MaxPendingPoints == 0 {
		o.MaxPendingPoints = 100_000
	}
	if o.Flushers == 0 {
		o.Flushers = 2
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Result is the outcome of one device message.
type Result struct {
	// Accepted is the number of points (or properties) written.
	Accepted int
	// Rejected lists what was not written and why; indexes are the
	// points' places in the message.
	Rejected []ingest.Rejection
	// Err means the message's points are not known to be durable: the
	// message must not be acknowledged (the device will send it again).
	Err error
}

// Stats counts a gateway's messages since start.
type Stats struct {
	Messages, Points, Rejected, Failed uint64
}

// Gateway turns device messages into twinlog writes: telemetry through the
// ingester (group-committed across concurrent messages), reported
// properties through the twin service, command responses to the registry.
// Both the embedded broker and the client mode feed one. It is safe for
// concurrent use.
type Gateway struct {
	reg  *devices.Registry
	in   *ingest.Ingester
	tw   *twins.Service
	opts Options
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	q struct {
		sync.Mutex
		notEmpty, notFull sync.Cond
		entries           []*entry
		points            int
		closed            bool
		last              chan struct{} // closed when the newest taken batch has completed
	}
	onBatch atomic.Pointer[func()]

	messages, points, rejected, failed atomic.Uint64
}

// entry is one queued message.
type entry struct {
	body []byte // its points: comma-separated JSON objects, nil for none
	idx  []int  // message-local index of each point in body
	rejs []ingest.Rejection
	done func(Result)
}

// NewGateway starts a gateway writing through in (telemetry), tw
// (reported properties, provisioning) and reg (devices, commands).
func NewGateway(reg *devices.Registry, in *ingest.Ingester, tw *twins.Service, opts Options) (*Gateway, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.defaults()
	g := &Gateway{reg: reg, in: in, tw: tw, opts: opts, log: opts.Logger}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.q.notEmpty.L, g.q.notFull.L = &g.q.Mutex, &g.q.Mutex
	g.q.last = make(chan struct{})
	close(g.q.last)
	for range opts.Flushers {
		g.wg.Add(1)
		go g.flusher()
	}
	return g, nil
}

// Registry returns the device registry.
func (g *Gateway) Registry() *devices.Registry { return g.reg }

// Stats returns the gateway's counters.
func (g *Gateway) Stats() Stats {
	return Stats{Messages: g.messages.Load(), Points: g.points.Load(), Rejected: g.rejected.Load(), Failed: g.failed.Load()}
}

// setOnBatch sets a function called after each batch's completions, from
// the goroutine that ran them (the broker flushes coalesced PUBACKs).
func (g *Gateway) setOnBatch(f func()) { g.onBatch.Store(&f) }

// Close appends what is queued, waits for it, and stops. Messages given
// after Close complete with an error.
func (g *Gateway) Close() error {
	g.q.Lock()
	g.q.closed = true
	g.q.notEmpty.Broadcast()
	g.q.notFull.Broadcast()
	g.q.Unlock()
	g.wg.Wait()
	g.cancel()
	return nil
}

var errClosed = errors.New("mqtt: gateway closed")

func reject(code, format string, args ...any) []ingest.Rejection {
	return []ingest.Rejection{{Index: 0, Code: code, Message: fmt.Sprintf(format, args...)}}
}

// Complete queues a result with no points, so that done runs in order
// after the messages queued before it.
func (g *Gateway) Complete(r Result, done func(Result)) {
	g.enqueue(&entry{rejs: r.Rejected, done: func(Result) { done(r) }})
}

// Telemetry writes a device's telemetry message: a JSON object (one
// point), an array of objects or NDJSON, each object holding telemetry
// values by name and optionally "time", "messageId", "component" and
// "$model". model is a model id announced out of band ("" for none). done
// is called once the points are durable or rejected, in the order messages
// were given.
func (g *Gateway) Telemetry(deviceID, model string, payload []byte, done func(Result)) {
	d, ok := g.reg.Get(deviceID)
	if !ok {
		g.Complete(Result{Rejected: reject("DeviceNotFound", "device %s is not registered", deviceID)}, done)
		return
	}
	e := &entry{done: done}
	announced, err := encodePoints(e, d.TwinID, payload)
	if err != nil {
		g.Complete(Result{Rejected: reject("InvalidJson", "the message is not valid JSON: %v", err)}, done)
		return
	}
	if model == "" {
		model = announced
	}
	if err := g.provision(&d, model); err != nil {
		g.Complete(Result{Rejected: rejectErr(err)}, done)
		return
	}
	g.enqueue(e)
}

// provision makes sure the device's twin exists, announcing model.
func (g *Gateway) provision(d *devices.Device, model string) error {
	if d.Provisioned && (model == "" || model == d.ModelID) {
		return nil
	}
	if model == "" {
		return engine.Errorf(engine.KindInvalid, "DeviceNotProvisioned",
			"device %s has no twin yet: announce its DTDL model id ($model or the model-id user property)", d.ID)
	}
	ctx, cancel := context.WithTimeout(g.ctx, 30*time.Second)
	defer cancel()
	nd, err := g.reg.Provision(ctx, d.ID, model)
	if err != nil {
		return err
	}
	g.log.Info("device provisioned", "device", d.ID, "twin", nd.TwinID, "model", model)
	*d = nd
	return nil
}

func rejectErr(err error) []ingest.Rejection {
	e := engine.AsError(err)
	return []ingest.Rejection{{Code: e.Code, Message: e.Message}}
}

// Reported writes a device's reported properties: a JSON object of
// property values by name (optionally "$model"), applied to its twin as a
// JSON Patch of "add" operations. done runs in message order.
func (g *Gateway) Reported(deviceID, model string, payload []byte, done func(Result)) {
	d, ok := g.reg.Get(deviceID)
	if !ok {
		g.Complete(Result{Rejected: reject("DeviceNotFound", "device %s is not registered", deviceID)}, done)
		return
	}
	var props map[string]json.RawMessage
	if err := json.Unmarshal(payload, &props); err != nil {
		g.Complete(Result{Rejected: reject("InvalidJson", "reported properties must be a JSON object: %v", err)}, done)
		return
	}
	if raw, ok := props["$model"]; ok {
		delete(props, "$model")
		var m string
		if json.Unmarshal(raw, &m) == nil && model == "" {
			model = m
		}
	}
	if err := g.provision(&d, model); err != nil {
		g.Complete(Result{Rejected: rejectErr(err)}, done)
		return
	}
	if len(props) == 0 {
		g.Complete(Result{}, done)
		return
	}
	var patch bytes.Buffer
	patch.WriteByte('[')
	n := 0
	for k, v := range props {
		if n > 0 {
			patch.WriteByte(',')
		}
		n++
		path, _ := json.Marshal("/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(k))
		fmt.Fprintf(&patch, `{"op":"add","path":%s,"value":%s}`, path, v)
	}
	patch.WriteByte(']')
	ctx, cancel := context.WithTimeout(g.ctx, 30*time.Second)
	defer cancel()
	r := Result{Accepted: n}
	if _, err := g.tw.PatchTwin(ctx, "device:"+deviceID, d.TwinID, patch.Bytes(), twins.Cond{}); err != nil {
		e := engine.AsError(err)
		if e.Kind == engine.KindInternal || e.Kind == engine.KindUnavailable {
			r = Result{Err: err}
		} else {
			r = Result{Rejected: rejectErr(err)}
		}
	}
	g.Complete(r, done)
}

// Respond hands a device's command response to the caller waiting for it.
func (g *Gateway) Respond(deviceID, requestID string, status int, payload []byte) bool {
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = nil
	} else if !json.Valid(payload) {
		b, _ := json.Marshal(string(payload))
		payload = b
	}
	return g.reg.Respond(deviceID, requestID, devices.Response{Status: status, Payload: payload})
}

// encodePoints decodes a device's payload and appends its points, naming
// twin, to e.body as JSON objects in ingest's point shape. It returns the
// model id a point announced with "$model".
func encodePoints(e *entry, twin string, payload []byte) (model string, err error) {
	var fields []ingest.Field
	err = ingest.Decode(payload, func(p *ingest.Point) {
		if p.Twin != "" || p.Device != "" {
			e.rejs = append(e.rejs, ingest.Rejection{Index: p.Index, Code: "InvalidArgument",
				Message: "a device's point names no twinId or deviceId: the topic says which device sent it"})
			return
		}
		fields = fields[:0]
		for _, f := range p.Fields {
			if f.Name == "$model" {
				if f.Kind == ingest.KindString {
					var m string
					if json.Unmarshal(f.Raw, &m) == nil {
						model = m
					}
				}
				continue
			}
			fields = append(fields, f)
		}
		if len(fields) == 0 && len(fields) != len(p.Fields) {
			return // only an announcement
		}
		if len(e.body) > 0 {
			e.body = append(e.body, ',')
		}
		e.body = append(e.body, `{"twinId":`...)
		e.body = appendJSONString(e.body, twin)
		if p.Component != "" {
			e.body = append(e.body, `,"component":`...)
			e.body = appendJSONString(e.body, p.Component)
		}
		if p.Time != "" {
			e.body = append(e.body, `,"time":`...)
			e.body = appendJSONString(e.body, p.Time)
		}
		if p.MessageID != "" {
			e.body = append(e.body, `,"messageId":`...)
			e.body = appendJSONString(e.body, p.MessageID)
		}
		for _, f := range fields {
			e.body = append(e.body, ',')
			e.body = append(e.body, f.RawName...)
			e.body = append(e.body, ':')
			e.body = append(e.body, f.Raw...)
		}
		e.body = append(e.body, '}')
		e.idx = append(e.idx, p.Index)
	}, func(idx int, err error) {
		e.rejs = append(e.rejs, ingest.Rejection{Index: idx, Code: "InvalidJson", Message: err.Error()})
	})
	return model, err
}

const hexDigits = "0123456789abcdef"

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

func (g *Gateway) enqueue(e *entry) {
	g.messages.Add(1)
	g.q.Lock()
	for g.q.points >= g.opts.MaxPendingPoints && !g.q.closed {
		g.q.notFull.Wait()
	}
	if g.q.closed {
		g.q.Unlock()
		g.failed.Add(1)
		e.done(Result{Err: errClosed})
		return
	}
	g.q.entries = append(g.q.entries, e)
	g.q.points += len(e.idx)
	g.q.notEmpty.Signal()
	g.q.Unlock()
}

// take removes the next batch from the queue, or returns nil once closed
// and drained. prev is closed when the batch before it has completed;
// the batch must close mine once its completions ran.
func (g *Gateway) take() (batch []*entry, prev, mine chan struct{}) {
	g.q.Lock()
	defer g.q.Unlock()
	for len(g.q.entries) == 0 {
		if g.q.closed {
			return nil, nil, nil
		}
		g.q.notEmpty.Wait()
	}
	points, size, n := 0, 0, 0
	for n < len(g.q.entries) {
		e := g.q.entries[n]
		if n > 0 && (points+len(e.idx) > g.opts.MaxBatchPoints || size+len(e.body) > g.opts.MaxBatchBytes) {
			break
		}
		points += len(e.idx)
		size += len(e.body) + 1
		n++
	}
	batch = append([]*entry(nil), g.q.entries[:n]...)
	rest := copy(g.q.entries, g.q.entries[n:])
	clear(g.q.entries[rest:])
	g.q.entries = g.q.entries[:rest]
	g.q.points -= points
	g.q.notFull.Broadcast()
	if len(g.q.entries) > 0 {
		g.q.notEmpty.Signal()
	}
	prev, mine = g.q.last, make(chan struct{})
	g.q.last = mine
	return batch, prev, mine
}

func (g *Gateway) flusher() {
	defer g.wg.Done()
	var body []byte
	for {
		batch, prev, mine := g.take()
		if batch == nil {
			return
		}
		body = append(body[:0], '[')
		points := 0
		for _, e := range batch {
			if len(e.idx) == 0 {
				continue
			}
			if points > 0 {
				body = append(body, ',')
			}
			body = append(body, e.body...)
			points += len(e.idx)
		}
		body = append(body, ']')
		var rep *ingest.Report
		var err error
		if points > 0 {
			rep, err = g.ingest(body)
		}
		<-prev
		g.complete(batch, rep, err)
		if f := g.onBatch.Load(); f != nil {
			(*f)()
		}
		close(mine)
		if cap(body) > 8<<20 {
			body = nil
		}
	}
}

// ingest appends a batch, waiting out ErrBusy (the queue, bounded, pushes
// back on the devices meanwhile).
func (g *Gateway) ingest(body []byte) (*ingest.Report, error) {
	for {
		rep, err := g.in.Ingest(g.ctx, "mqtt", body)
		if !errors.Is(err, ingest.ErrBusy) {
			return rep, err
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-g.ctx.Done():
			return nil, g.ctx.Err()
		}
	}
}

// complete runs the batch's completions in order, mapping the report's
// rejections (batch indexes) back to each message.
func (g *Gateway) complete(batch []*entry, rep *ingest.Report, err error) {
	var rejected []ingest.Rejection
	if rep != nil {
		rejected = rep.Rejected
	}
	base := 0
	for _, e := range batch {
		r := Result{Rejected: e.rejs}
		n := len(e.idx)
		if err != nil && n > 0 {
			r.Err = err
			g.failed.Add(1)
		} else {
			r.Accepted = n
			for len(rejected) > 0 && rejected[0].Index < base+n {
				rj := rejected[0]
				rejected = rejected[1:]
				rj.Index = e.idx[rj.Index-base]
				r.Rejected = append(r.Rejected, rj)
				r.Accepted--
			}
			g.points.Add(uint64(r.Accepted))
		}
		if len(r.Rejected) > 0 {
			g.rejected.Add(uint64(len(r.Rejected)))
		}
		base += n
		e.done(r)
	}
}
