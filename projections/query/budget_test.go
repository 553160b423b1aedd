package query

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine"
)

// TestBudget checks that an exhausted time budget or a cancelled context
// stops a scan with a clear error and no rows.
func TestBudget(t *testing.T) {
	g := newMemGraph()
	g.addModel("dtmi:x:T;1")
	for i := range 5000 {
		g.addTwin(fmt.Sprintf("t%05d", i), "dtmi:x:T;1", map[string]any{"n": float64(i)})
	}
	g.seal()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		opts Options
	}{
		{name: "timeout", ctx: context.Background(), opts: Options{Timeout: time.Nanosecond}},
		{name: "context deadline", ctx: expired},
		{name: "cancelled", ctx: cancelled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Run(tc.ctx, g, "SELECT COUNT() FROM DIGITALTWINS T WHERE T.n >= 0", tc.opts)
			var e *engine.Error
			if !errors.As(err, &e) || e.Code != CodeTimeout {
				t.Fatalf("err=%v (result %v), want %s", err, res, CodeTimeout)
			}
		})
	}
}
