package host_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/twinlog/twinlog/wasm-handlers/host"
)

// TestInvokeStopsRunawayGuests checks the sandbox: an infinite loop is
// stopped after its budget, while other goroutines (and the garbage
// collector) keep running, and a trapping instance does not poison the
// next invocation.
func TestInvokeStopsRunawayGuests(t *testing.T) {
	h, err := host.New(host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	tests := []struct {
		name, mode string
		timeout    time.Duration
		want       host.FailureKind
	}{
		{"loop", "loop", 100 * time.Millisecond, host.FailTimeout},
		{"panic", "panic", 5 * time.Second, host.FailHandler},
		{"exit", "exit", 5 * time.Second, host.FailTrap},
		{"bomb", "bomb", 5 * time.Second, host.FailTrap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := h.Compile(ctx, tt.name, modules["hostile"], host.Limits{Timeout: tt.timeout, MemoryPages: 256},
				[]byte(`{"mode":"`+tt.mode+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(ctx)
			evs, in := telemetryBatch(4)
			// Collect garbage all along: a guest that could not be
			// preempted would stall it and the test.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						runtime.GC()
					}
				}
			}()
			for i := 0; i < 2; i++ {
				start := time.Now()
				_, err = m.Invoke(ctx, noState{}, evs, in)
				var f *host.Failure
				if !errors.As(err, &f) || f.Kind != tt.want {
					t.Fatalf("invoke %d: %v, want a %v failure", i, err, tt.want)
				}
				if d := time.Since(start); d > tt.timeout+5*time.Second {
					t.Errorf("invoke %d took %v", i, d)
				}
			}
			close(stop)
			wg.Wait()
		})
	}
}

// TestInvokeCanceled checks that canceling the caller's context stops a
// running guest.
func TestInvokeCanceled(t *testing.T) {
	h, err := host.New(host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	m, err := h.Compile(context.Background(), "loop", modules["hostile"], host.Limits{Timeout: time.Minute}, []byte(`{"mode":"loop"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	evs, in := telemetryBatch(1)
	_, err = m.Invoke(ctx, noState{}, evs, in)
	var f *host.Failure
	if !errors.As(err, &f) || f.Kind != host.FailHost {
		t.Fatalf("invoke: %v, want a host failure (canceled)", err)
	}
}

// TestKeep checks that a host keeps the most recently compiled modules
// after their Modules close, up to Keep of them, and that a module
// compiled again from the kept code runs.
func TestKeep(t *testing.T) {
	ctx := context.Background()
	h, err := host.New(host.Config{Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	compile := func(name string) *host.Module {
		t.Helper()
		m, err := h.Compile(ctx, name, modules[name], host.Limits{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	evs, in := telemetryBatch(3)
	for round := range 2 {
		for _, name := range []string{"trivial", "comfort", "trivial"} {
			m := compile(name)
			if name == "trivial" {
				res, err := m.Invoke(ctx, noState{}, evs, in)
				if err != nil || len(res.Outputs) != 0 {
					t.Fatalf("round %d: %s: %d outputs, %v", round, name, len(res.Outputs), err)
				}
			}
			m.Close(ctx)
		}
		if n := host.KeptModules(h); n != 2 {
			t.Fatalf("round %d: %d modules kept, want 2", round, n)
		}
	}
	// A third module pushes out the least recently compiled.
	compile("average").Close(ctx)
	if n := host.KeptModules(h); n != 2 {
		t.Fatalf("%d modules kept, want 2", n)
	}
	// Nothing is kept by default.
	h0, err := host.New(host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h0.Close()
	m, err := h0.Compile(ctx, "trivial", modules["trivial"], host.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Close(ctx)
	if n := host.KeptModules(h0); n != 0 {
		t.Fatalf("default host keeps %d modules", n)
	}
	if _, err := host.New(host.Config{Keep: -1}); err == nil {
		t.Fatal("negative Keep accepted")
	}
}
