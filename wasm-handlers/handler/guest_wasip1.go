//go:build wasip1

package handler

import (
	"fmt"
	"unsafe"

	"github.com/twinlog/twinlog/wasm-handlers/abi"
)

//go:wasmimport twinlog twin
func hostTwin(idp, idl, outp, outc uint32) int32

//go:wasmimport twinlog property
func hostProperty(idp, idl, np, nl, outp, outc uint32) int32

//go:wasmimport twinlog model
func hostModel(idp, idl, outp, outc uint32) int32

//go:wasmimport twinlog relationships
func hostRelationships(idp, idl, np, nl uint32, dir int32, outp, outc uint32) int32

//go:wasmimport twinlog query
func hostQuery(qp, ql, outp, outc uint32) int32

//go:wasmimport twinlog patch
func hostPatch(cause, idp, idl, pp, pl uint32) int32

//go:wasmimport twinlog telemetry
func hostTelemetry(cause, idp, idl, bp, bl uint32) int32

//go:wasmimport twinlog log
func hostLog(level int32, mp, ml uint32)

//go:wasmimport twinlog metric
func hostMetric(np, nl uint32, v float64)

//go:wasmimport twinlog config
func hostConfig(outp, outc uint32) int32

//go:wasmimport twinlog fail
func hostFail(mp, ml uint32)

//go:wasmimport twinlog last_error
func hostLastError(outp, outc uint32) int32

func sptr(s string) (uint32, uint32) {
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s)))), uint32(len(s))
}

func bptr(b []byte) (uint32, uint32) {
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))), uint32(len(b))
}

func aliasString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

var scratch = make([]byte, 16<<10)

// readScratch calls f with the scratch buffer until the result fits, and
// returns it in the scratch buffer: valid until the next host read.
func readScratch(f func(p, c uint32) int32) ([]byte, error) {
	for {
		p, c := bptr(scratch)
		n := f(p, c)
		if n < 0 {
			return nil, codeErr(n)
		}
		if int(n) <= len(scratch) {
			return scratch[:n], nil
		}
		scratch = make([]byte, n)
	}
}

// read is readScratch returning a copy of the result.
func read(f func(p, c uint32) int32) ([]byte, error) {
	b, err := readScratch(f)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// Twin returns the ADT JSON of a twin.
func Twin(id string) ([]byte, error) {
	ip, il := sptr(id)
	return read(func(p, c uint32) int32 { return hostTwin(ip, il, p, c) })
}

// Property returns the JSON value of a root property of a twin.
func Property(twin, name string) ([]byte, error) {
	b, err := property(twin, name)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// property is Property returning the value in the scratch buffer, for
// callers that parse it at once.
func property(twin, name string) ([]byte, error) {
	ip, il := sptr(twin)
	np, nl := sptr(name)
	return readScratch(func(p, c uint32) int32 { return hostProperty(ip, il, np, nl, p, c) })
}

// Model returns the model id of a twin.
func Model(twin string) (string, error) {
	ip, il := sptr(twin)
	b, err := readScratch(func(p, c uint32) int32 { return hostModel(ip, il, p, c) })
	return string(b), err
}

func relationships(twin, name string, dir int32) ([]Relationship, error) {
	ip, il := sptr(twin)
	np, nl := sptr(name)
	b, err := read(func(p, c uint32) int32 { return hostRelationships(ip, il, np, nl, dir, p, c) })
	if err != nil {
		return nil, err
	}
	// b is the relationships' own copy: their strings alias it.
	return abi.NewReader(b, aliasString).Relationships()
}

// Query runs a read-only ADT query over the snapshot and returns its rows
// as a JSON array.
func Query(text string) ([]byte, error) {
	qp, ql := sptr(text)
	return read(func(p, c uint32) int32 { return hostQuery(qp, ql, p, c) })
}

// Config returns the manifest's config object as JSON.
func Config() []byte {
	b, err := read(hostConfig)
	if err != nil {
		return []byte("{}")
	}
	return b
}

// Log writes a message to the host's log at level (slog levels: -4 debug,
// 0 info, 4 warn, 8 error).
func Log(level int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	mp, ml := sptr(msg)
	hostLog(int32(level), mp, ml)
}

// Metric sets a gauge of the handler, shown in its status.
func Metric(name string, v float64) {
	np, nl := sptr(name)
	hostMetric(np, nl, v)
}

// Patch queues a JSON Patch of twin caused by e.
func (e *Event) Patch(twin string, patch []byte) error {
	ip, il := sptr(twin)
	pp, pl := bptr(patch)
	if n := hostPatch(e.index, ip, il, pp, pl); n < 0 {
		return codeErr(n)
	}
	return nil
}

// SendTelemetry queues a telemetry message from twin caused by e.
func (e *Event) SendTelemetry(twin string, body []byte) error {
	ip, il := sptr(twin)
	bp, bl := bptr(body)
	if n := hostTelemetry(e.index, ip, il, bp, bl); n < 0 {
		return codeErr(n)
	}
	return nil
}

func lastError() string {
	b, err := read(hostLastError)
	if err != nil {
		return "host call failed"
	}
	return string(b)
}

var input []byte

//go:wasmexport twinlog_abi_v1
func exportABI() int32 { return abi.Version }

//go:wasmexport twinlog_alloc
func exportAlloc(n uint32) uint32 {
	if uint32(cap(input)) < n {
		input = make([]byte, n)
	}
	input = input[:n]
	p, _ := bptr(input)
	return p
}

//go:wasmexport twinlog_handle
func exportHandle(p, n uint32) int32 {
	if int(n) > cap(input) {
		msg := "input beyond the allocated buffer"
		mp, ml := sptr(msg)
		hostFail(mp, ml)
		return abi.ResultFailed
	}
	err := safeRun(input[:n])
	if err != nil {
		msg := err.Error()
		mp, ml := sptr(msg)
		hostFail(mp, ml)
		return abi.ResultFailed
	}
	return abi.ResultOK
}

func safeRun(b []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return run(b)
}
