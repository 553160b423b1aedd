package host

import (
	"context"
	"errors"
	"testing"

	"github.com/tetratelabs/wazero"
)

// loopModule is a minimal module: a memory and an exported function f
// with a loop that runs n times, n its i32 parameter.
var loopModule = []byte{
	0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00,
	0x01, 0x05, 0x01, 0x60, 0x01, 0x7f, 0x00, // type: (i32) -> ()
	0x03, 0x02, 0x01, 0x00, // func 0: type 0
	0x05, 0x03, 0x01, 0x00, 0x01, // memory: min 1
	0x07, 0x05, 0x01, 0x01, 'f', 0x00, 0x00, // export "f" func 0
	0x0a, 0x12, 0x01, 0x10, 0x00, // code: 1 body of 16 bytes, no locals
	0x03, 0x40, // loop
	0x20, 0x00, 0x41, 0x01, 0x6b, 0x21, 0x00, // local.get 0; i32.const 1; i32.sub; local.set 0
	0x20, 0x00, 0x0d, 0x00, // local.get 0; br_if 0
	0x0b, 0x0b, // end; end
}

func TestInstrument(t *testing.T) {
	ctx := context.Background()
	b, err := instrument(loopModule)
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	mod, err := rt.Instantiate(ctx, b)
	if err != nil {
		t.Fatalf("instrumented module: %v", err)
	}
	if _, err := mod.ExportedFunction("f").Call(ctx, 100_000); err != nil {
		t.Fatalf("call: %v", err)
	}
	g := mod.ExportedGlobal(interruptExport)
	if g == nil {
		t.Fatal("no interrupt global")
	}
	g.(interface{ Set(uint64) }).Set(1)
	if _, err := mod.ExportedFunction("f").Call(ctx, 100_000); err == nil {
		t.Fatal("an interrupted loop returned")
	}

	for _, tt := range []struct {
		name string
		wasm []byte
	}{
		{"empty", nil},
		{"not wasm", []byte("hello world")},
		{"truncated", loopModule[:len(loopModule)-3]},
		{"start section", append(append([]byte{}, loopModule...), 0x08, 0x01, 0x00)},
		{"no memory", append(append([]byte{}, loopModule[:19]...), loopModule[24:]...)},
	} {
		if _, err := instrument(tt.wasm); !errors.Is(err, errInstrument) {
			t.Errorf("%s: %v, want errInstrument", tt.name, err)
		}
	}
}

// FuzzInstrument rewrites arbitrary bytes: it must not panic, and what it
// accepts from a valid module must stay valid.
func FuzzInstrument(f *testing.F) {
	f.Add(loopModule)
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := instrument(b)
		if err != nil {
			return
		}
		ctx := context.Background()
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
		defer rt.Close(ctx)
		if _, err := rt.CompileModule(ctx, b); err != nil {
			return // invalid input: the rewrite need not be valid either
		}
		if _, err := rt.CompileModule(ctx, out); err != nil {
			t.Fatalf("valid module became invalid: %v", err)
		}
	})
}
