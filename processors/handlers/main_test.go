package handlers_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/filelog"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/handlers"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/wasm-handlers/handlertest"
)

// modules are the handler modules built once for the test binary.
var modules map[string][]byte

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "handlers-wasm")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	files, err := handlertest.Build(dir, handlertest.Examples)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	modules = map[string][]byte{}
	for name, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		modules[name] = b
	}
	os.RemoveAll(dir)
	os.Exit(m.Run())
}

// node is the stack a handler runs in: log, engine with the twin graph,
// twin service and the handler manager.
type node struct {
	log eventlog.Log
	eng *engine.Engine
	svc *twins.Service
	mgr *handlers.Manager
}

// open starts a node on lg; dataDir holds the compilation cache. extra
// projections are applied after the twin graph.
func open(t testing.TB, lg eventlog.Log, dataDir string, opts handlers.Options, extra ...engine.Projection) *node {
	t.Helper()
	ctx := context.Background()
	g := twingraph.New(twingraph.Options{})
	eng, err := engine.New(lg, engine.Options{}, append([]engine.Projection{g}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	svc := twins.New(eng, g, twins.Options{})
	if opts.CacheDir == "" && dataDir != "" {
		opts.CacheDir = filepath.Join(dataDir, "wazero-cache")
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = 50 * time.Millisecond
	}
	mgr, err := handlers.New(eng, svc, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return &node{log: lg, eng: eng, svc: svc, mgr: mgr}
}

func newMemNode(t testing.TB, opts handlers.Options, extra ...engine.Projection) *node {
	t.Helper()
	n := open(t, memlog.New(memlog.Options{}), t.TempDir(), opts, extra...)
	t.Cleanup(func() { n.close(t, false) })
	return n
}

func openFileNode(t testing.TB, dir string) *node {
	t.Helper()
	lg, err := filelog.Open(filepath.Join(dir, "log"), filelog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return open(t, lg, dir, handlers.Options{ModuleDir: filepath.Join(dir, "modules")})
}

func (n *node) close(t testing.TB, closeLog bool) {
	if n.mgr == nil {
		return
	}
	if err := n.mgr.Close(); err != nil {
		t.Error(err)
	}
	n.eng.Stop()
	n.mgr = nil
	if closeLog {
		n.log.Close()
	}
}

// settle waits until the handlers have handled everything, cascades
// included: the log head stops moving.
func (n *node) settle(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stable := 0
	for stable < 3 {
		head, err := n.log.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.eng.WaitApplied(ctx, head); err != nil {
			t.Fatal(err)
		}
		if err := n.mgr.WaitIdle(ctx, head); err != nil {
			t.Fatalf("handlers did not settle: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
		after, _ := n.log.Head(ctx)
		if after == head {
			stable++
		} else {
			stable = 0
		}
	}
}

// eachEvent calls fn for every event of n's log, in order.
func (n *node) eachEvent(t testing.TB, fn func(e *event.Event)) {
	t.Helper()
	for from := uint64(1); ; {
		evs, err := n.log.Read(context.Background(), from, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return
		}
		for i := range evs {
			fn(&evs[i])
		}
		from = evs[len(evs)-1].Position + 1
	}
}

func (n *node) deploy(t testing.TB, module string, man handlers.Manifest) *handlers.Status {
	t.Helper()
	st, err := n.mgr.Deploy(context.Background(), "test", man, modules[module])
	if err != nil {
		t.Fatalf("deploy %s: %v", man.Name, err)
	}
	return st
}
