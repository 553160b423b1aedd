package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"
	"unsafe"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/twinlog/twinlog/wasm-handlers/abi"
)

// State is what a handler reads during one invocation: one consistent
// snapshot of the twin graph. Implementations are used by one invocation at
// a time and return bytes the host copies before the next call. The id and
// name strings they are given (not Query's text) view guest memory: valid
// only during the call, never to be kept.
type State interface {
	// TwinJSON returns a twin's ADT JSON.
	TwinJSON(id string) ([]byte, bool)
	// Property returns a root property's canonical JSON value.
	Property(id, name string) ([]byte, bool)
	// Model returns a twin's model id.
	Model(id string) (string, bool)
	// Relationships returns twin id's outgoing (or incoming) relationships
	// named name ("" for all); ok is false when the twin does not exist.
	Relationships(id, name string, incoming bool) (rels []abi.Relationship, ok bool)
	// Query runs a read-only query and returns its rows as a JSON array.
	Query(ctx context.Context, text string) ([]byte, error)
}

// OutputKind says what an Output asks for.
type OutputKind uint8

// Output kinds.
const (
	OutputPatch     OutputKind = iota + 1 // a JSON Patch of Twin
	OutputTelemetry                       // a telemetry message from Twin
)

// Output is one write a handler asked for.
type Output struct {
	Kind OutputKind
	// Cause is the index, in the invocation's batch, of the event that
	// caused it.
	Cause int
	// Seq numbers the outputs of one cause from 0, in the order asked.
	Seq  int
	Twin string
	// Body is the JSON Patch or the telemetry message.
	Body []byte
}

// Result is what one invocation produced.
type Result struct {
	Outputs []Output
	// Metrics are the gauges the handler set.
	Metrics map[string]float64
	// Duration is the wall time of the guest call.
	Duration time.Duration
}

// FailureKind classifies a failed invocation.
type FailureKind uint8

// Failure kinds.
const (
	// FailHandler: the handler returned an error (or panicked and the SDK
	// recovered).
	FailHandler FailureKind = iota + 1
	// FailTimeout: the invocation exceeded its CPU-time budget and was
	// stopped.
	FailTimeout
	// FailTrap: the guest trapped, exited, or ran out of memory.
	FailTrap
	// FailLimit: the handler exceeded its output limits.
	FailLimit
	// FailHost: the host could not run the invocation.
	FailHost
)

var failNames = [...]string{"", "handler error", "timeout", "trap", "output limit", "host error"}

func (k FailureKind) String() string { return failNames[k] }

// Failure is the error of a failed invocation.
type Failure struct {
	Kind    FailureKind
	Message string
	// Output is the tail of the guest's stdout and stderr, when any.
	Output string
}

func (f *Failure) Error() string {
	s := f.Kind.String() + ": " + f.Message
	if f.Output != "" {
		s += " (guest output: " + f.Output + ")"
	}
	return s
}

// call is the state of one invocation, reached by host functions through
// the context.
type call struct {
	m        *Module
	state    State
	batch    []abi.Event
	res      *Result
	outBytes int
	seqs     []int                        // by cause: outputs so far
	overlay  map[string]map[string][]byte // twin → property → value (nil: removed)
	// remembered is how many of res.Outputs the overlay holds: patches
	// are parsed only when a property is read after them.
	remembered int
	failMsg    string
	lastErr    string
	// lastMetric is the name of the gauge set last.
	lastMetric string
	limitMsg   string
	ctx        context.Context
}

type callKey struct{}

// Invoke runs the handler once over batch, whose encoding is input (made
// with abi.AppendBatchHeader and abi.AppendEvent from the same events). It
// returns the outputs, or a *Failure.
func (m *Module) Invoke(ctx context.Context, state State, batch []abi.Event, input []byte) (*Result, error) {
	inst, err := m.get(ctx)
	if err != nil {
		return nil, &Failure{Kind: FailHost, Message: err.Error()}
	}
	res := &Result{}
	c := &call{m: m, state: state, batch: batch, res: res, ctx: ctx}
	start := time.Now()
	code, err := inst.run(context.WithValue(ctx, callKey{}, c), input, m.limits.Timeout)
	res.Duration = time.Since(start)
	if err != nil {
		inst.close()
		f := &Failure{Kind: FailTrap, Message: err.Error(), Output: inst.stderr.take()}
		var ee *sys.ExitError
		switch {
		case errors.Is(err, errOutOfTime):
			f.Kind, f.Message = FailTimeout, fmt.Sprintf("stopped after %v", m.limits.Timeout)
		case errors.Is(err, errInterrupted):
			f.Kind, f.Message = FailHost, "canceled"
		case errors.As(err, &ee):
			f.Message = fmt.Sprintf("the module exited with code %d", ee.ExitCode())
		case ctx.Err() != nil:
			f.Kind = FailHost
		}
		return nil, f
	}
	m.put(inst)
	if c.limitMsg != "" {
		return nil, &Failure{Kind: FailLimit, Message: c.limitMsg}
	}
	if code != abi.ResultOK {
		msg := c.failMsg
		if msg == "" {
			msg = fmt.Sprintf("returned %d", code)
		}
		return nil, &Failure{Kind: FailHandler, Message: msg, Output: inst.stderr.take()}
	}
	return res, nil
}

func (i *instance) run(ctx context.Context, input []byte, timeout time.Duration) (uint32, error) {
	n := uint32(len(input))
	if n > i.bufCap || i.buf == 0 {
		i.stack[0] = uint64(max(n, 64<<10))
		if err := i.call(ctx, i.allocFn, timeout); err != nil {
			return 0, err
		}
		i.buf, i.bufCap = uint32(i.stack[0]), uint32(max(n, 64<<10))
	}
	if !i.mem.Write(i.buf, input) {
		return 0, errors.New("guest input buffer out of memory bounds")
	}
	i.stack[0], i.stack[1] = uint64(i.buf), uint64(n)
	if err := i.call(ctx, i.handleFn, timeout); err != nil {
		return 0, err
	}
	return uint32(i.stack[0]), nil
}

func (m *Module) instantiateHost(ctx context.Context) error {
	b := m.rt.NewHostModuleBuilder(abi.HostModule)
	i32 := api.ValueTypeI32
	fn := func(name string, f api.GoModuleFunc, params, results []api.ValueType) {
		b.NewFunctionBuilder().WithGoModuleFunction(f, params, results).Export(name)
	}
	p := func(n int) []api.ValueType {
		v := make([]api.ValueType, n)
		for i := range v {
			v[i] = i32
		}
		return v
	}
	r := []api.ValueType{i32}
	fn(abi.HostTwin, hostTwin, p(4), r)
	fn(abi.HostProperty, hostProperty, p(6), r)
	fn(abi.HostModel, hostModel, p(4), r)
	fn(abi.HostRelationships, hostRelationships, p(7), r)
	fn(abi.HostQuery, hostQuery, p(4), r)
	fn(abi.HostPatch, hostOutput(OutputPatch), p(5), r)
	fn(abi.HostTelemetry, hostOutput(OutputTelemetry), p(5), r)
	fn(abi.HostLog, m.hostLog, p(3), nil)
	fn(abi.HostMetric, hostMetric, []api.ValueType{i32, i32, api.ValueTypeF64}, nil)
	fn(abi.HostConfig, func(ctx context.Context, mod api.Module, s []uint64) { s[0] = reply(mod, s[0], s[1], m.config) }, p(2), r)
	fn(abi.HostFail, hostFail, p(2), nil)
	fn(abi.HostLastError, hostLastError, p(2), r)
	_, err := b.Instantiate(ctx)
	return err
}

func callOf(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// str reads a guest string; ok is false when it is out of bounds.
func str(mod api.Module, p, n uint64) (string, bool) {
	b, ok := mod.Memory().Read(uint32(p), uint32(n))
	if !ok {
		return "", false
	}
	return string(b), true
}

// view is str without a copy: the string views guest memory, valid until
// the guest runs again. For lookups that keep nothing.
func view(mod api.Module, p, n uint64) (string, bool) {
	b, ok := mod.Memory().Read(uint32(p), uint32(n))
	if !ok {
		return "", false
	}
	return unsafe.String(unsafe.SliceData(b), len(b)), true
}

// reply writes b to the guest's output buffer (p, cap) when it fits and
// returns its length.
func reply(mod api.Module, p, c uint64, b []byte) uint64 {
	if uint64(len(b)) <= c && !mod.Memory().Write(uint32(p), b) {
		return neg(abi.ErrInvalid)
	}
	return uint64(uint32(len(b)))
}

func neg(code int32) uint64 { return uint64(uint32(code)) }

func hostTwin(ctx context.Context, mod api.Module, s []uint64) {
	c := callOf(ctx)
	id, ok := view(mod, s[0], s[1])
	if c == nil || !ok {
		s[0] = neg(abi.ErrInvalid)
		return
	}
	b, ok := c.state.TwinJSON(id)
	if !ok {
		s[0] = neg(abi.ErrNotFound)
		return
	}
	s[0] = reply(mod, s[2], s[3], b)
}

func hostProperty(ctx context.Context, mod api.Module, s []uint64) {
	c := callOf(ctx)
	id, ok1 := view(mod, s[0], s[1])
	name, ok2 := view(mod, s[2], s[3])
	if c == nil || !ok1 || !ok2 {
		s[0] = neg(abi.ErrInvalid)
		return
	}
	c.catchUp()
	if props, ok := c.overlay[id]; ok {
		if v, ok := props[name]; ok {
			if v == nil {
				s[0] = neg(abi.ErrNotFound)
				return
			}
			s[0] = reply(mod, s[4], s[5], v)
			return
		}
	}
	b, ok := c.state.Property(id, name)
	if !ok {
		s[0] = neg(abi.ErrNotFound)
		return
	}
	s[0] = reply(mod, s[4], s[5], b)
}

func hostModel(ctx context.Context, mod api.Module, s []uint64) {
	c := callOf(ctx)
	id, ok := view(mod, s[0], s[1])
	if c == nil || !ok {
		s[0] = neg(abi.ErrInvalid)
		return
	}
	m, ok := c.state.Model(id)
	if !ok {
		s[0] = neg(abi.ErrNotFound)
		return
	}
	s[0] = reply(mod, s[2], s[3], []byte(m))
}

func hostRelationships(ctx context.Context, mod api.Module, s []uint64) {
	c := callOf(ctx)
	id, ok1 := view(mod, s[0], s[1])
	name, ok2 := view(mod, s[2], s[3])
	if c == nil || !ok1 || !ok2 {
		s[0] = neg(abi.ErrInvalid)
		return
	}
	rels, ok := c.state.Relationships(id, name, uint32(s[4]) == 1)
	if !ok {
		s[0] = neg(abi.ErrNotFound)
		return
	}
	s[0] = reply(mod, s[5], s[6], abi.AppendRelationships(nil, rels))
}

func hostQuery(ctx context.Context, mod api.Module, s []uint64) {
	c := callOf(ctx)
	q, ok := str(mod, s[0], s[1])
	if c == nil || !ok {
		s[0] = neg(abi.ErrInvalid)
		return
	}
	b, err := c.state.Query(c.ctx, q)
	if err != nil {
		c.lastErr = err.Error()
		s[0] = neg(abi.ErrFailed)
		return
	}
	s[0] = reply(mod, s[2], s[3], b)
}

func hostOutput(kind OutputKind) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, s []uint64) {
		c := callOf(ctx)
		cause := int(uint32(s[0]))
		twin, ok1 := str(mod, s[1], s[2])
		body, ok2 := mod.Memory().Read(uint32(s[3]), uint32(s[4]))
		if c == nil || !ok1 || !ok2 || cause >= len(c.batch) {
			s[0] = neg(abi.ErrInvalid)
			return
		}
		c.outBytes += len(twin) + len(body)
		if len(c.res.Outputs) >= c.m.limits.MaxOutputs || c.outBytes > c.m.limits.MaxOutputBytes {
			if c.limitMsg == "" {
				c.limitMsg = fmt.Sprintf("more than %d outputs or %d bytes of outputs in one invocation", c.m.limits.MaxOutputs, c.m.limits.MaxOutputBytes)
			}
			s[0] = neg(abi.ErrLimit)
			return
		}
		if c.seqs == nil {
			c.seqs = make([]int, len(c.batch))
		}
		seq := c.seqs[cause]
		c.seqs[cause] = seq + 1
		c.res.Outputs = append(c.res.Outputs, Output{Kind: kind, Cause: cause, Seq: seq, Twin: twin, Body: append([]byte(nil), body...)})
		s[0] = 0
	}
}

// catchUp brings the overlay up to date with the patches queued so far,
// in order, so a read sees them.
func (c *call) catchUp() {
	for ; c.remembered < len(c.res.Outputs); c.remembered++ {
		if o := &c.res.Outputs[c.remembered]; o.Kind == OutputPatch {
			c.remember(o.Twin, o.Body)
		}
	}
}

// remember records the effect of a patch on root properties, so later
// reads of the same invocation see it.
func (c *call) remember(twin string, patch []byte) {
	ops, ok := parsePlainPatch(patch)
	if !ok {
		if ops, ok = parsePatch(patch); !ok {
			return
		}
	}
	for _, op := range ops {
		name, ok := strings.CutPrefix(op.path, "/")
		if !ok || strings.Contains(name, "/") {
			continue
		}
		name = strings.ReplaceAll(strings.ReplaceAll(name, "~1", "/"), "~0", "~")
		if c.overlay == nil {
			c.overlay = map[string]map[string][]byte{}
		}
		props := c.overlay[twin]
		if props == nil {
			props = map[string][]byte{}
			c.overlay[twin] = props
		}
		switch op.op {
		case "add", "replace":
			props[name] = op.value
		case "remove":
			props[name] = nil
		}
	}
}

// patchOp is one operation of a JSON Patch as remember reads it: value
// is compact JSON ("null" when absent).
type patchOp struct {
	op, path string
	value    []byte
}

// parsePatch reads a JSON Patch with encoding/json; ok is false when it is
// not an array of operations.
func parsePatch(patch []byte) (_ []patchOp, ok bool) {
	var ops []struct {
		Op    string          `json:"op"`
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if json.Unmarshal(patch, &ops) != nil {
		return nil, false
	}
	out := make([]patchOp, len(ops))
	for i, op := range ops {
		out[i] = patchOp{op: op.Op, path: op.Path, value: compactJSON(op.Value)}
	}
	return out, true
}

// parsePlainPatch reads the JSON Patches handlers usually write (the SDK's
// PatchOf): an array of objects with only the members "op", "path" and
// "value", the first two plain strings (printable ASCII, no escapes), the
// value a number, true, false, null or a plain string. It reads them as
// parsePatch would, without encoding/json's reflection; ok is false for
// anything else, which parsePatch then reads.
func parsePlainPatch(b []byte) (ops []patchOp, ok bool) {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != '[' {
		return nil, false
	}
	if i = skipSpace(b, i+1); i < len(b) && b[i] == ']' {
		return nil, skipSpace(b, i+1) == len(b)
	}
	for {
		if i == len(b) || b[i] != '{' {
			return nil, false
		}
		op := patchOp{value: []byte("null")}
		i = skipSpace(b, i+1)
		for {
			key, j, ok := plainString(b, i)
			if !ok {
				return nil, false
			}
			if i = skipSpace(b, j); i == len(b) || b[i] != ':' {
				return nil, false
			}
			i = skipSpace(b, i+1)
			switch key {
			case "op", "path":
				s, j, ok := plainString(b, i)
				if !ok {
					return nil, false
				}
				if key == "op" {
					op.op = s
				} else {
					op.path = s
				}
				i = j
			case "value":
				j := i
				if _, k, ok := plainString(b, i); ok && !bytes.ContainsAny(b[i:k], "<>&") {
					j = k // encoding/json would escape <, > and &
				} else {
					for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
						j++
					}
					if j == i || b[i] == '{' || b[i] == '[' || b[i] == '"' || !json.Valid(b[i:j]) {
						return nil, false
					}
				}
				op.value, i = b[i:j:j], j
			default:
				return nil, false
			}
			if i = skipSpace(b, i); i < len(b) && b[i] == ',' {
				i = skipSpace(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				i = skipSpace(b, i+1)
				break
			}
			return nil, false
		}
		ops = append(ops, op)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == ']' && skipSpace(b, i+1) == len(b) {
			return ops, true
		}
		return nil, false
	}
}

// plainString reads the JSON string at b[i:] when it is plain (printable
// ASCII without escapes) and returns it and the index after it.
func plainString(b []byte, i int) (s string, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return "", 0, false
		}
	}
	return "", 0, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func compactJSON(v json.RawMessage) []byte {
	var out []byte
	if b, err := json.Marshal(v); err == nil {
		out = b
	}
	return out
}

func (m *Module) hostLog(ctx context.Context, mod api.Module, s []uint64) {
	msg, ok := str(mod, s[1], s[2])
	if !ok {
		return
	}
	if len(msg) > 4096 {
		msg = msg[:4096]
	}
	h := m.h
	h.logger.Log(ctx, slog.Level(int32(uint32(s[0]))), msg, "handler", m.name)
}

func hostMetric(ctx context.Context, mod api.Module, s []uint64) {
	c := callOf(ctx)
	name, ok := mod.Memory().Read(uint32(s[0]), uint32(s[1]))
	if c == nil || !ok || len(name) > 128 {
		return
	}
	v := math.Float64frombits(s[2])
	if c.res.Metrics == nil {
		c.res.Metrics = map[string]float64{}
	}
	// The gauge set last, set again (the usual case), takes no copy of
	// its name.
	key := c.lastMetric
	if string(name) != key {
		key = string(name)
		c.lastMetric = key
	}
	if _, ok := c.res.Metrics[key]; ok || len(c.res.Metrics) < 64 {
		c.res.Metrics[key] = v
	}
}

func hostFail(ctx context.Context, mod api.Module, s []uint64) {
	c := callOf(ctx)
	msg, ok := str(mod, s[0], s[1])
	if c == nil || !ok {
		return
	}
	if len(msg) > 4096 {
		msg = msg[:4096]
	}
	c.failMsg = msg
}

func hostLastError(ctx context.Context, mod api.Module, s []uint64) {
	c := callOf(ctx)
	if c == nil {
		s[0] = neg(abi.ErrInvalid)
		return
	}
	s[0] = reply(mod, s[0], s[1], []byte(c.lastErr))
}
