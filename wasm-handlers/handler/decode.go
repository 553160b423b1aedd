package handler

import (
	"unsafe"

	"github.com/twinlog/twinlog/wasm-handlers/abi"
)

// decodeEvent decodes the event (abi's encoding) at b[off:] into e and
// returns the offset after it; ok is false when b is malformed there. The
// event's strings and payload alias b.
//
// It is abi.Reader.Event for the guest, where Go's bounds checks and calls
// cost many WebAssembly instructions each: it checks each length once and
// loads the fields with unsafe (WebAssembly is little endian and allows
// unaligned loads). FuzzDecodeEvent holds it to abi.Reader.
func decodeEvent(b []byte, off int, e *abi.Event) (next int, ok bool) {
	const fixed = 8 + 8 + 8 + 4 + 1
	n := len(b)
	if off < 0 || n-off < fixed {
		return 0, false
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	e.Position = load64(p, off)
	e.Time = int64(load64(p, off+8))
	e.Seed = load64(p, off+16)
	e.Hop = load32(p, off+24)
	e.Kind = abi.Kind(*(*byte)(unsafe.Add(p, off+28)))
	off += fixed
	// Type, Twin, Model, Component, Relationship.
	var strs [5]string
	for i := range strs {
		if strs[i], off = loadString(p, n, off); off < 0 {
			return 0, false
		}
	}
	e.Type, e.Twin, e.Model, e.Component, e.Relationship = strs[0], strs[1], strs[2], strs[3], strs[4]
	if n-off < 4 {
		return 0, false
	}
	c := int(load32(p, off))
	off += 4
	if c > (n-off)/4 {
		return 0, false
	}
	e.Changed = e.Changed[:0]
	for range c {
		var s string
		if s, off = loadString(p, n, off); off < 0 {
			return 0, false
		}
		e.Changed = append(e.Changed, s)
	}
	if n-off < 4 {
		return 0, false
	}
	l := int(load32(p, off))
	off += 4
	if l > n-off {
		return 0, false
	}
	e.Payload = b[off : off+l : off+l]
	return off + l, true
}

// loadString returns the length-prefixed string at off of the n bytes at
// p, viewing them, and the offset after it; -1 when it overruns them.
func loadString(p unsafe.Pointer, n, off int) (string, int) {
	if n-off < 4 {
		return "", -1
	}
	l := int(load32(p, off))
	off += 4
	if l > n-off {
		return "", -1
	}
	if l == 0 {
		return "", off
	}
	return unsafe.String((*byte)(unsafe.Add(p, off)), l), off + l
}

func load32(p unsafe.Pointer, off int) uint32 { return *(*uint32)(unsafe.Add(p, off)) }
func load64(p unsafe.Pointer, off int) uint64 { return *(*uint64)(unsafe.Add(p, off)) }
