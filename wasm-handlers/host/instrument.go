package host

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// interruptExport names the global the instrumented module exports: while
// it is non-zero, the guest traps at the next loop header.
const interruptExport = "twinlog_interrupt"

// Section ids of the WebAssembly binary format.
const (
	secCustom = 0
	secImport = 2
	secMemory = 5
	secGlobal = 6
	secExport = 7
	secStart  = 8
	secCode   = 10
)

// sectionRank orders the known sections as the binary format requires;
// custom sections (0) may appear anywhere.
var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

var errInstrument = errors.New("malformed module")

// yieldEvery is how many loop iterations an instrumented guest runs between
// two visits to the host.
const yieldEvery = 4096

// appendI32Const appends i32.const v (signed LEB128).
func appendI32Const(b []byte, v int32) []byte {
	b = append(b, 0x41)
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// instrument rewrites a module so a runaway guest can be stopped without
// wazero's context guard (which leaves the guest for the host at every loop
// iteration, several times slower). It adds two mutable i32 globals, a
// countdown and an interrupt flag (exported as interruptExport), and at the
// top of every loop
//
//	if countdown == 0 {
//		memory.grow 0           ;; leave the guest for the host: a point where
//		                        ;; Go can preempt the goroutine (GC, timers)
//		if interrupt { unreachable }
//		countdown = yieldEvery
//	}
//	countdown--
//
// a load, a store and a branch per iteration. The host sets the interrupt
// when an invocation runs out of time, and the guest traps within
// yieldEvery iterations; a guest cannot run unboundedly without looping
// (recursion ends in a stack overflow). Native guest code cannot be
// preempted by Go, so the periodic exit also keeps a long invocation from
// stalling the process's garbage collector.
//
// The module must define a memory and must have no start function (the
// host runs _initialize itself, under the same limit). DWARF sections are
// dropped: they address code offsets the rewrite moves.
func instrument(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || binary.LittleEndian.Uint32(wasm[4:8]) != 1 {
		return nil, fmt.Errorf("%w: not a WebAssembly 1.0 binary", errInstrument)
	}
	type section struct {
		id   byte
		body []byte
	}
	var secs []section
	for p := wasm[8:]; len(p) > 0; {
		id := p[0]
		size, n := binary.Uvarint(p[1:])
		if n <= 0 || size > uint64(len(p)-1-n) {
			return nil, fmt.Errorf("%w: truncated section %d", errInstrument, id)
		}
		secs = append(secs, section{id, p[1+n : 1+n+int(size)]})
		p = p[1+n+int(size):]
	}

	importedGlobals, definedGlobals := uint64(0), uint64(0)
	hasGlobal, hasExport, hasMemory := false, false, false
	for _, s := range secs {
		switch s.id {
		case secStart:
			return nil, fmt.Errorf("%w: a handler must not have a start function", errInstrument)
		case secImport:
			g, err := countImportedGlobals(s.body)
			if err != nil {
				return nil, err
			}
			importedGlobals = g
		case secMemory:
			c, n := binary.Uvarint(s.body)
			hasMemory = n > 0 && c > 0
		case secGlobal:
			hasGlobal = true
			c, n := binary.Uvarint(s.body)
			if n <= 0 {
				return nil, fmt.Errorf("%w: global section", errInstrument)
			}
			definedGlobals = c
		case secExport:
			hasExport = true
		}
	}
	if !hasMemory {
		return nil, fmt.Errorf("%w: a handler must define its memory", errInstrument)
	}
	countdown := importedGlobals + definedGlobals
	interrupt := countdown + 1
	gget := func(b []byte, g uint64) []byte { return binary.AppendUvarint(append(b, 0x23), g) }
	gset := func(b []byte, g uint64) []byte { return binary.AppendUvarint(append(b, 0x24), g) }
	check := gget(nil, countdown)
	check = append(check, 0x45, 0x04, 0x40)             // i32.eqz; if
	check = append(check, 0x41, 0x00, 0x40, 0x00, 0x1a) // i32.const 0; memory.grow 0; drop
	check = gget(check, interrupt)
	check = append(check, 0x04, 0x40, 0x00, 0x0b) // if; unreachable; end
	check = appendI32Const(check, yieldEvery)
	check = gset(check, countdown)
	check = append(check, 0x0b) // end
	check = gget(check, countdown)
	check = append(check, 0x41, 0x01, 0x6b) // i32.const 1; i32.sub
	check = gset(check, countdown)

	out := make([]byte, 0, len(wasm)+len(wasm)/16)
	out = append(out, wasm[:8]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	newGlobals := append(appendI32Const([]byte{0x7f, 0x01}, yieldEvery), 0x0b) // countdown: mut i32 = yieldEvery
	newGlobals = append(newGlobals, 0x7f, 0x01, 0x41, 0x00, 0x0b)              // interrupt: mut i32 = 0
	newExport := binary.AppendUvarint(nil, uint64(len(interruptExport)))
	newExport = append(newExport, interruptExport...)
	newExport = binary.AppendUvarint(append(newExport, 0x03), interrupt)
	emitMissing := func(r int) {
		if !hasGlobal && r > sectionRank[secGlobal] {
			emit(secGlobal, append([]byte{2}, newGlobals...))
			hasGlobal = true
		}
		if !hasExport && r > sectionRank[secExport] {
			emit(secExport, append([]byte{1}, newExport...))
			hasExport = true
		}
	}
	for _, s := range secs {
		if s.id != secCustom {
			emitMissing(sectionRank[s.id])
		}
		switch s.id {
		case secCustom:
			name, n := binary.Uvarint(s.body)
			if n > 0 && name <= uint64(len(s.body)-n) && strings.HasPrefix(string(s.body[n:n+int(name)]), ".debug_") {
				continue
			}
			emit(s.id, s.body)
		case secGlobal:
			c, n := binary.Uvarint(s.body)
			body := binary.AppendUvarint(nil, c+2)
			body = append(append(body, s.body[n:]...), newGlobals...)
			emit(s.id, body)
		case secExport:
			c, n := binary.Uvarint(s.body)
			if n <= 0 {
				return nil, fmt.Errorf("%w: export section", errInstrument)
			}
			if err := checkExports(s.body[n:], c); err != nil {
				return nil, err
			}
			body := binary.AppendUvarint(nil, c+1)
			body = append(append(body, s.body[n:]...), newExport...)
			emit(s.id, body)
		case secCode:
			body, err := instrumentCode(s.body, check)
			if err != nil {
				return nil, err
			}
			emit(s.id, body)
		default:
			emit(s.id, s.body)
		}
	}
	emitMissing(len(sectionRank) + 1) // past every section
	return out, nil
}

// reader walks a section's bytes; the first error sticks.
type reader struct {
	b   []byte
	p   int
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at byte %d", errInstrument, what, r.p)
	}
	r.p = len(r.b)
}

func (r *reader) byte() byte {
	if r.p >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[r.p]
	r.p++
	return c
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b[min(r.p, len(r.b)):])
	if n <= 0 {
		r.fail("bad LEB128")
		return 0
	}
	r.p += n
	return v
}

// leb skips a signed or unsigned LEB128 number.
func (r *reader) leb() {
	for i := 0; i < 10; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail("bad LEB128")
}

func (r *reader) skip(n uint64) {
	if n > uint64(len(r.b)-r.p) {
		r.fail("unexpected end")
		return
	}
	r.p += int(n)
}

func (r *reader) memarg() {
	if align := r.uvarint(); align&0x40 != 0 { // multi-memory: a memory index follows
		r.leb()
	}
	r.leb()
}

func (r *reader) blockType() {
	if r.p >= len(r.b) {
		r.fail("unexpected end")
		return
	}
	switch c := r.b[r.p]; {
	case c == 0x40 || c >= 0x6f && c <= 0x7f: // empty or one value type
		r.p++
	default:
		r.leb() // s33 type index
	}
}

func countImportedGlobals(b []byte) (uint64, error) {
	r := &reader{b: b}
	globals := uint64(0)
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		r.skip(r.uvarint()) // module
		r.skip(r.uvarint()) // name
		switch r.byte() {
		case 0x00: // func
			r.leb()
		case 0x01: // table: reftype, limits
			r.byte()
			r.limits()
		case 0x02: // memory
			r.limits()
		case 0x03: // global: valtype, mut
			r.byte()
			r.byte()
			globals++
		case 0x04: // tag
			r.byte()
			r.leb()
		default:
			r.fail("unknown import kind")
		}
	}
	return globals, r.err
}

func (r *reader) limits() {
	flags := r.byte()
	r.leb()
	if flags&1 != 0 {
		r.leb()
	}
}

func checkExports(b []byte, n uint64) error {
	r := &reader{b: b}
	for ; n > 0 && r.err == nil; n-- {
		l := r.uvarint()
		start := r.p
		r.skip(l)
		if r.err == nil && string(b[start:r.p]) == interruptExport {
			return fmt.Errorf("%w: exports %s, a name the host reserves", errInstrument, interruptExport)
		}
		r.byte()
		r.leb()
	}
	return r.err
}

// instrumentCode rewrites the code section, inserting check after every
// loop's block type.
func instrumentCode(b []byte, check []byte) ([]byte, error) {
	r := &reader{b: b}
	count := r.uvarint()
	if r.err != nil {
		return nil, r.err
	}
	out := binary.AppendUvarint(make([]byte, 0, len(b)+len(b)/16), count)
	var fn []byte
	for i := uint64(0); i < count; i++ {
		size := r.uvarint()
		start := r.p
		r.skip(size)
		if r.err != nil {
			return nil, r.err
		}
		f, err := instrumentFunc(b[start:r.p], check, fn[:0])
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		fn = f
		out = binary.AppendUvarint(out, uint64(len(fn)))
		out = append(out, fn...)
	}
	if r.p != len(b) {
		return nil, fmt.Errorf("%w: code section has trailing bytes", errInstrument)
	}
	return out, nil
}

func instrumentFunc(body, check, out []byte) ([]byte, error) {
	r := &reader{b: body}
	for n := r.uvarint(); n > 0 && r.err == nil; n-- { // locals
		r.leb()
		r.byte()
	}
	last := 0 // bytes of body before last are in out
	for r.p < len(body) && r.err == nil {
		op := r.byte()
		switch {
		case op == 0x02 || op == 0x04 || op == 0x06: // block, if, try
			r.blockType()
		case op == 0x03: // loop
			r.blockType()
			if r.err == nil {
				out = append(append(out, body[last:r.p]...), check...)
				last = r.p
			}
		case op <= 0x01 || op == 0x05 || op == 0x0b || op == 0x0f || op == 0x19 || op == 0x1a || op == 0x1b || op == 0xd1:
		case op >= 0x45 && op <= 0xc4: // numeric
		case op >= 0x07 && op <= 0x0d || op == 0x10 || op == 0x12 || op == 0x18 || op >= 0x20 && op <= 0x26 ||
			op == 0x3f || op == 0x40 || op == 0x41 || op == 0x42 || op == 0xd2:
			r.leb()
		case op == 0x0e: // br_table
			for n := r.uvarint(); n > 0 && r.err == nil; n-- {
				r.leb()
			}
			r.leb()
		case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
			r.leb()
			r.leb()
		case op == 0x1c: // select t*
			r.skip(r.uvarint())
		case op >= 0x28 && op <= 0x3e:
			r.memarg()
		case op == 0x43:
			r.skip(4)
		case op == 0x44:
			r.skip(8)
		case op == 0xd0:
			r.byte()
		case op == 0xfc:
			switch sub := r.uvarint(); {
			case sub <= 7:
			case sub == 8 || sub == 10 || sub == 12 || sub == 14:
				r.leb()
				r.leb()
			case sub <= 17:
				r.leb()
			default:
				r.fail(fmt.Sprintf("unknown instruction 0xfc %d", sub))
			}
		case op == 0xfd:
			switch sub := r.uvarint(); {
			case sub <= 11 || sub == 92 || sub == 93:
				r.memarg()
			case sub == 12 || sub == 13:
				r.skip(16)
			case sub >= 21 && sub <= 34:
				r.byte()
			case sub >= 84 && sub <= 91:
				r.memarg()
				r.byte()
			}
		case op == 0xfe:
			if sub := r.uvarint(); sub == 0x03 {
				r.byte()
			} else {
				r.memarg()
			}
		default:
			r.fail(fmt.Sprintf("unknown instruction 0x%02x", op))
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return append(out, body[last:]...), nil
}
