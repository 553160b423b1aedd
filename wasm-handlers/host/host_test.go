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
