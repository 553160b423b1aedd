package handlers

import (
	"context"

	"github.com/twinlog/twinlog/wasm-handlers/abi"
	"github.com/twinlog/twinlog/wasm-handlers/host"
)

// NativeFunc is handler logic in Go, for comparison with its WebAssembly
// build: it gets the batch the guest would get and returns the result.
type NativeFunc func(state host.State, batch []abi.Event) (*host.Result, error)

func (f NativeFunc) Invoke(ctx context.Context, state host.State, batch []abi.Event, input []byte) (*host.Result, error) {
	return f(state, batch)
}

// SetNative makes the current version of handler name run f instead of its
// module.
func SetNative(m *Manager, name string, f NativeFunc) {
	r, ok := m.runner(name)
	if !ok {
		panic("no handler " + name)
	}
	v, _ := r.current()
	v.mu.Lock()
	v.native = f
	v.mu.Unlock()
}

// Outputs returns the handler that wrote an event with this actor ("" when
// none) and the outputs the write stands for, as "<cause position>.<seq>",
// oldest first.
func Outputs(actor string) (handler string, outputs []string) {
	c := parseActor(actor)
	for _, o := range c.outputs {
		outputs = append(outputs, o.key())
	}
	return c.handler, outputs
}
