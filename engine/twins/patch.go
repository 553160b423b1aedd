package twins

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"github.com/twinlog/twinlog/engine/jsonstr"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// Op is one parsed JSON Patch (RFC 6902) operation.
type Op struct {
	Op   string
	Path []string // decoded reference tokens; empty is the whole document
	From []string // move and copy
	// Value is the decoded value of add, replace and test.
	Value any
}

// errPatch marks a patch that is malformed or cannot be applied; the
// service reports it as JsonPatchInvalid.
var errPatch = errors.New("invalid JSON patch")

func patchErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errPatch, fmt.Sprintf(format, args...))
}

// ParsePatch parses a JSON Patch document. Allowed operations are add,
// remove, replace, move, copy and test.
func ParsePatch(data []byte) ([]Op, error) {
	if ops, ok := parseSimplePatch(data); ok {
		return ops, nil
	}
	return parsePatchJSON(data)
}

// parsePatchJSON is ParsePatch through the JSON decoder.
func parsePatchJSON(data []byte) ([]Op, error) {
	v, err := twingraph.DecodeJSON(data)
	if err != nil {
		return nil, patchErr("%v", err)
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, patchErr("a JSON Patch must be an array of operations")
	}
	ops := make([]Op, 0, len(arr))
	for i, x := range arr {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, patchErr("operation %d is not an object", i)
		}
		var r rawOp
		r.op, r.hasOp = m["op"].(string)
		r.path, r.hasPath = m["path"].(string)
		r.from, r.hasFrom = m["from"].(string)
		r.value, r.hasValue = m["value"]
		op, err := r.check(i)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// rawOp is one operation's members as found in the document; has* tell
// whether op, path and from are present as strings, and value at all.
type rawOp struct {
	op, path, from          string
	value                   any
	hasOp, hasPath, hasFrom bool
	hasValue                bool
}

// check checks operation i and decodes its pointers.
func (r *rawOp) check(i int) (Op, error) {
	var op Op
	var err error
	if !r.hasOp {
		return op, patchErr("operation %d has no op", i)
	}
	op.Op = r.op
	if !r.hasPath {
		return op, patchErr("operation %d has no path", i)
	}
	if op.Path, err = ParsePointer(r.path); err != nil {
		return op, patchErr("operation %d: %v", i, err)
	}
	switch r.op {
	case "add", "replace", "test":
		if !r.hasValue {
			return op, patchErr("operation %d (%s) has no value", i, r.op)
		}
		op.Value = r.value
	case "remove":
	case "move", "copy":
		if !r.hasFrom {
			return op, patchErr("operation %d (%s) has no from", i, r.op)
		}
		if op.From, err = ParsePointer(r.from); err != nil {
			return op, patchErr("operation %d: %v", i, err)
		}
	default:
		return op, patchErr("operation %d has unknown op %q", i, r.op)
	}
	return op, nil
}

// parseSimplePatch parses the common patch without a JSON decoder: an
// array of objects whose members are op, path, from and value, each at
// most once, the strings plain ASCII without escapes and the values
// scalars. It reports false for anything else, and for any error, which
// the general parser then reports; where it succeeds the result is the
// one the general parser gives.
func parseSimplePatch(data []byte) ([]Op, bool) {
	p := simpleParser{b: data}
	p.ws()
	if !p.eat('[') {
		return nil, false
	}
	var ops []Op
	for {
		p.ws()
		if !p.eat('{') {
			return nil, false
		}
		var r rawOp
		for {
			p.ws()
			k, ok := p.raw()
			if !ok {
				return nil, false
			}
			p.ws()
			if !p.eat(':') {
				return nil, false
			}
			p.ws()
			switch key := string(k); key {
			case "op":
				v, ok := p.raw()
				if !ok || r.hasOp {
					return nil, false
				}
				r.op, r.hasOp = opName(v), true
			case "path", "from":
				v, ok := p.str()
				if !ok {
					return nil, false
				}
				switch {
				case key == "path" && !r.hasPath:
					r.path, r.hasPath = v, true
				case key == "from" && !r.hasFrom:
					r.from, r.hasFrom = v, true
				default:
					return nil, false
				}
			case "value":
				v, ok := p.scalar()
				if !ok || r.hasValue {
					return nil, false
				}
				r.value, r.hasValue = v, true
			default:
				return nil, false
			}
			p.ws()
			if p.eat('}') {
				break
			}
			if !p.eat(',') {
				return nil, false
			}
		}
		op, err := r.check(len(ops))
		if err != nil {
			return nil, false
		}
		ops = append(ops, op)
		p.ws()
		if p.eat(']') {
			break
		}
		if !p.eat(',') {
			return nil, false
		}
	}
	p.ws()
	return ops, p.i == len(p.b)
}

type simpleParser struct {
	b []byte
	i int
}

func (p *simpleParser) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *simpleParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// opNames are the operations of RFC 6902, shared by every parsed patch.
var opNames = [...]string{"add", "remove", "replace", "move", "copy", "test"}

// opName returns the operation named b, without allocating for the six
// RFC 6902 names.
func opName(b []byte) string {
	for _, n := range opNames {
		if string(b) == n {
			return n
		}
	}
	return string(b)
}

// raw reads a string of printable ASCII without escapes and returns its
// bytes, which alias the input.
func (p *simpleParser) raw() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			b := p.b[start:p.i]
			p.i++
			return b, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// str reads a string of printable ASCII without escapes.
func (p *simpleParser) str() (string, bool) {
	b, ok := p.raw()
	return string(b), ok
}

// scalar reads a string, number, true, false or null as DecodeJSON
// decodes it.
func (p *simpleParser) scalar() (any, bool) {
	if p.i >= len(p.b) {
		return nil, false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.i
		if !p.number() {
			return nil, false
		}
		return json.Number(p.b[start:p.i]), true
	}
	for _, lit := range [...]struct {
		s string
		v any
	}{{"true", true}, {"false", false}, {"null", nil}} {
		if bytes.HasPrefix(p.b[p.i:], []byte(lit.s)) {
			p.i += len(lit.s)
			return lit.v, true
		}
	}
	return nil, false
}

// number consumes a number of RFC 8259's grammar.
func (p *simpleParser) number() bool {
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	p.eat('-')
	switch {
	case p.eat('0'):
	case p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9':
		digits()
	default:
		return false
	}
	if p.eat('.') && digits() == 0 {
		return false
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// ParsePointer decodes a JSON Pointer (RFC 6901) into reference tokens.
func ParsePointer(p string) ([]string, error) {
	if p == "" {
		return []string{}, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("JSON pointer %q does not start with /", p)
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		if !strings.Contains(t, "~") {
			continue
		}
		var b strings.Builder
		for j := 0; j < len(t); j++ {
			if t[j] != '~' {
				b.WriteByte(t[j])
				continue
			}
			if j+1 >= len(t) || (t[j+1] != '0' && t[j+1] != '1') {
				return nil, fmt.Errorf("JSON pointer %q has a bad ~ escape", p)
			}
			if t[j+1] == '0' {
				b.WriteByte('~')
			} else {
				b.WriteByte('/')
			}
			j++
		}
		toks[i] = b.String()
	}
	return toks, nil
}

// FormatPointer encodes reference tokens as a JSON Pointer.
func FormatPointer(toks []string) string {
	return string(appendPointer(nil, toks))
}

// appendPointer appends toks encoded as a JSON Pointer.
func appendPointer(b []byte, toks []string) []byte {
	for _, t := range toks {
		b = append(b, '/')
		for i := 0; i < len(t); i++ {
			switch c := t[i]; c {
			case '~':
				b = append(b, '~', '0')
			case '/':
				b = append(b, '~', '1')
			default:
				b = append(b, c)
			}
		}
	}
	return b
}

// appendPointerJSON appends toks encoded as a JSON Pointer, as a JSON
// string.
func appendPointerJSON(b []byte, toks []string) []byte {
	var buf [128]byte
	p := appendPointer(buf[:0], toks)
	return jsonstr.Append(b, unsafe.String(unsafe.SliceData(p), len(p)))
}

// MarshalOps encodes ops canonically, as recorded in events: each
// operation an object with its members sorted by name (from, op, path,
// value), as twingraph.Canonical would encode it.
func MarshalOps(ops []Op) ([]byte, error) {
	b := make([]byte, 0, 64*len(ops))
	b = append(b, '[')
	for i, op := range ops {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if op.Op == "move" || op.Op == "copy" {
			b = append(b, `"from":`...)
			b = appendPointerJSON(b, op.From)
			b = append(b, ',')
		}
		b = append(b, `"op":`...)
		b = twingraph.AppendString(b, op.Op)
		b = append(b, `,"path":`...)
		b = appendPointerJSON(b, op.Path)
		switch op.Op {
		case "add", "replace", "test":
			b = append(b, `,"value":`...)
			var err error
			if b, err = twingraph.AppendJSON(b, op.Value); err != nil {
				return nil, err
			}
		}
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// Apply applies ops in order to doc, a JSON value as decoded by
// twingraph.DecodeJSON, and returns the result. doc may be modified in place;
// on error the caller must discard it. Values added by ops are deep-copied,
// so ops can be applied again.
func Apply(doc any, ops []Op) (any, error) {
	var err error
	for i, op := range ops {
		switch op.Op {
		case "add":
			doc, err = add(doc, op.Path, deepCopy(op.Value))
		case "remove":
			doc, _, err = remove(doc, op.Path)
		case "replace":
			doc, _, err = remove(doc, op.Path)
			if err == nil {
				doc, err = add(doc, op.Path, deepCopy(op.Value))
			}
		case "move":
			if isPrefix(op.From, op.Path) && len(op.From) < len(op.Path) {
				err = patchErr("cannot move %s into itself", FormatPointer(op.From))
				break
			}
			var v any
			doc, v, err = remove(doc, op.From)
			if err == nil {
				doc, err = add(doc, op.Path, v)
			}
		case "copy":
			var v any
			v, err = get(doc, op.From)
			if err == nil {
				doc, err = add(doc, op.Path, deepCopy(v))
			}
		case "test":
			var v any
			v, err = get(doc, op.Path)
			if err == nil && !Equal(v, op.Value) {
				err = patchErr("test at %s failed", FormatPointer(op.Path))
			}
		default:
			err = patchErr("unknown op %q", op.Op)
		}
		if err != nil {
			if !errors.Is(err, errPatch) {
				err = fmt.Errorf("%w: %w", errPatch, err)
			}
			return nil, fmt.Errorf("operation %d (%s %s): %w", i, op.Op, FormatPointer(op.Path), err)
		}
	}
	return doc, nil
}

func isPrefix(p, of []string) bool {
	if len(p) > len(of) {
		return false
	}
	for i := range p {
		if p[i] != of[i] {
			return false
		}
	}
	return true
}

func arrayIndex(tok string, n int, allowEnd bool) (int, error) {
	if allowEnd && tok == "-" {
		return n, nil
	}
	if tok == "" || (len(tok) > 1 && tok[0] == '0') {
		return 0, patchErr("bad array index %q", tok)
	}
	i, err := strconv.Atoi(tok)
	if err != nil || i < 0 {
		return 0, patchErr("bad array index %q", tok)
	}
	limit := n - 1
	if allowEnd {
		limit = n
	}
	if i > limit {
		return 0, patchErr("array index %d out of range", i)
	}
	return i, nil
}

func get(doc any, path []string) (any, error) {
	cur := doc
	for _, tok := range path {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, patchErr("path %s does not exist", FormatPointer(path))
			}
			cur = v
		case []any:
			i, err := arrayIndex(tok, len(c), false)
			if err != nil {
				return nil, err
			}
			cur = c[i]
		default:
			return nil, patchErr("path %s does not exist", FormatPointer(path))
		}
	}
	return cur, nil
}

// add returns node with v added at path (RFC 6902 add).
func add(node any, path []string, v any) (any, error) {
	if len(path) == 0 {
		return v, nil
	}
	tok := path[0]
	switch c := node.(type) {
	case map[string]any:
		if len(path) == 1 {
			c[tok] = v
			return c, nil
		}
		child, ok := c[tok]
		if !ok {
			return nil, patchErr("parent of %s does not exist", FormatPointer(path))
		}
		n, err := add(child, path[1:], v)
		if err != nil {
			return nil, err
		}
		c[tok] = n
		return c, nil
	case []any:
		if len(path) == 1 {
			i, err := arrayIndex(tok, len(c), true)
			if err != nil {
				return nil, err
			}
			c = append(c, nil)
			copy(c[i+1:], c[i:])
			c[i] = v
			return c, nil
		}
		i, err := arrayIndex(tok, len(c), false)
		if err != nil {
			return nil, err
		}
		n, err := add(c[i], path[1:], v)
		if err != nil {
			return nil, err
		}
		c[i] = n
		return c, nil
	}
	return nil, patchErr("cannot add below a %s", kindOf(node))
}

// remove returns node without the value at path, and that value.
func remove(node any, path []string) (any, any, error) {
	if len(path) == 0 {
		return nil, nil, patchErr("cannot remove the whole document")
	}
	tok := path[0]
	switch c := node.(type) {
	case map[string]any:
		child, ok := c[tok]
		if !ok {
			return nil, nil, patchErr("path does not exist")
		}
		if len(path) == 1 {
			delete(c, tok)
			return c, child, nil
		}
		n, old, err := remove(child, path[1:])
		if err != nil {
			return nil, nil, err
		}
		c[tok] = n
		return c, old, nil
	case []any:
		i, err := arrayIndex(tok, len(c), false)
		if err != nil {
			return nil, nil, err
		}
		if len(path) == 1 {
			old := c[i]
			c = append(c[:i:i], c[i+1:]...)
			return c, old, nil
		}
		n, old, err := remove(c[i], path[1:])
		if err != nil {
			return nil, nil, err
		}
		c[i] = n
		return c, old, nil
	}
	return nil, nil, patchErr("path does not exist")
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number, float64, int, int64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = deepCopy(e)
		}
		return a
	}
	return v
}

// Equal reports whether two decoded JSON values are equal; numbers compare
// by value.
func Equal(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, e := range x {
			f, ok := y[k]
			if !ok || !Equal(e, f) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		fx, err1 := x.Float64()
		fy, err2 := y.Float64()
		return err1 == nil && err2 == nil && fx == fy
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case nil:
		return b == nil
	}
	return false
}

var errPatchRoot = errors.New("the document root cannot be replaced, moved or removed as a whole")

func errPatchMember(name string) error { return fmt.Errorf("%s cannot be patched", name) }
