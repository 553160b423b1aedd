// Package host runs twinlog WebAssembly handlers in wazero: it validates and
// compiles modules once (through an on-disk compilation cache), keeps a pool
// of instances per module, and invokes a handler once per batch of events
// with the ABI of package abi, sandboxed: a CPU-time limit per invocation
// (the module is closed when its context ends), a memory limit, no file
// system, no network, deterministic clocks and randomness, bounded outputs.
//
// The host knows nothing of the log or the graph: reads go to the State an
// invocation is given, and writes come back as Outputs for the caller
// (processors/handlers) to apply.
package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/twinlog/twinlog/wasm-handlers/abi"
)

// Config configures a Host. The zero value is valid.
type Config struct {
	// CacheDir holds wazero's compilation cache, so a restart does not
	// compile modules again. Default: no on-disk cache.
	CacheDir string
	// Logger receives handlers' log calls. Default slog.Default().
	Logger *slog.Logger
	// Keep is how many of the most recently compiled modules stay
	// compiled in memory after every Module of them is closed, so that
	// compiling one of them again (a simulation branch running a handler
	// the last one ran, a version rolled back) takes no compilation.
	// Default 0: a module's code is dropped with its last Module.
	Keep int
}

// Host compiles and runs handler modules. It is safe for concurrent use,
// and may be shared by several users (the live handlers and simulation
// branches), which then share its compiled code.
type Host struct {
	cache  wazero.CompilationCache
	logger *slog.Logger
	keep   int

	kept struct {
		sync.Mutex
		rt   wazero.Runtime // holds the kept modules' references
		mods []keptModule   // oldest first
	}
}

// keptModule is a compiled module the host keeps, by the SHA-256 of the
// (instrumented) bytes compiled.
type keptModule struct {
	sum      [sha256.Size]byte
	compiled wazero.CompiledModule
}

// New returns a host.
func New(cfg Config) (*Host, error) {
	if cfg.Keep < 0 {
		return nil, errors.New("host: negative Keep")
	}
	h := &Host{logger: cfg.Logger, keep: cfg.Keep}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("create cache dir: %w", err)
		}
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("open compilation cache: %w", err)
		}
		h.cache = c
	} else {
		h.cache = wazero.NewCompilationCache()
	}
	return h, nil
}

// Close releases the kept modules and the compilation cache. Modules must
// be closed first.
func (h *Host) Close() error {
	ctx := context.Background()
	h.kept.Lock()
	if h.kept.rt != nil {
		h.kept.rt.Close(ctx)
		h.kept.rt, h.kept.mods = nil, nil
	}
	h.kept.Unlock()
	return h.cache.Close(ctx)
}

// keepCompiled makes wasm, just compiled through the host's cache, one of the
// modules kept compiled (see Config.Keep): a reference to it from the
// host's own runtime, which finds it in the cache, keeps its code there.
func (h *Host) keepCompiled(ctx context.Context, wasm []byte) {
	if h.keep == 0 {
		return
	}
	sum := sha256.Sum256(wasm)
	h.kept.Lock()
	defer h.kept.Unlock()
	for i, k := range h.kept.mods {
		if k.sum == sum {
			// The most recent now.
			h.kept.mods = append(append(h.kept.mods[:i:i], h.kept.mods[i+1:]...), k)
			return
		}
	}
	if h.kept.rt == nil {
		h.kept.rt = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(h.cache))
	}
	compiled, err := h.kept.rt.CompileModule(ctx, wasm)
	if err != nil {
		// Compiled a moment ago: not expected. Nothing is kept.
		h.logger.Warn("keep compiled handler module", "error", err)
		return
	}
	h.kept.mods = append(h.kept.mods, keptModule{sum: sum, compiled: compiled})
	if len(h.kept.mods) > h.keep {
		h.kept.mods[0].compiled.Close(ctx)
		h.kept.mods = slices.Delete(h.kept.mods, 0, 1)
	}
}

// Limits bound one handler. Zero values mean the defaults.
type Limits struct {
	// Timeout is the CPU-time budget of one invocation (one batch).
	// Default 1 s.
	Timeout time.Duration `json:"timeoutMs,omitempty"`
	// MemoryPages bounds the linear memory, in 64 KiB pages. Default 1024
	// (64 MiB).
	MemoryPages uint32 `json:"memoryPages,omitempty"`
	// MaxOutputs bounds the patches and telemetry of one invocation.
	// Default 10,000.
	MaxOutputs int `json:"maxOutputs,omitempty"`
	// MaxOutputBytes bounds their total size. Default 4 MiB.
	MaxOutputBytes int `json:"maxOutputBytes,omitempty"`
	// MaxBatch bounds the events of one invocation. Default 1024.
	MaxBatch int `json:"maxBatch,omitempty"`
	// Pool is how many instances are kept ready. Default 1.
	Pool int `json:"pool,omitempty"`
}

// WithDefaults returns l with zero fields set to their defaults.
func (l Limits) WithDefaults() Limits {
	if l.Timeout <= 0 {
		l.Timeout = time.Second
	}
	if l.MemoryPages == 0 {
		l.MemoryPages = 1024
	}
	if l.MaxOutputs <= 0 {
		l.MaxOutputs = 10000
	}
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = 4 << 20
	}
	if l.MaxBatch <= 0 {
		l.MaxBatch = 1024
	}
	if l.Pool <= 0 {
		l.Pool = 1
	}
	return l
}

// Validate reports out-of-range limits.
func (l Limits) Validate() error {
	switch {
	case l.Timeout < 0 || l.Timeout > time.Minute:
		return errors.New("timeout must be at most one minute")
	case l.MemoryPages > 65536:
		return errors.New("memoryPages must be at most 65536 (4 GiB)")
	case l.MaxOutputs < 0 || l.MaxOutputBytes < 0 || l.MaxBatch < 0 || l.Pool < 0 || l.Pool > 64:
		return errors.New("limits must not be negative; pool at most 64")
	}
	return nil
}

// ErrInvalidModule is returned by Compile for a module that is not valid
// WebAssembly or not a twinlog handler.
var ErrInvalidModule = errors.New("host: invalid handler module")

// Module is a compiled handler with its pool of instances. Invoke is safe
// for concurrent use; each invocation gets an instance of its own.
type Module struct {
	name     string
	h        *Host
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	limits   Limits
	config   []byte

	pool   chan *instance
	mu     sync.Mutex
	closed bool
	seq    int
}

// Compile validates wasm as a twinlog handler (ABI exports, imports only
// from the twinlog host and WASI), compiles it and instantiates one
// instance, so the handler is live when it returns. config is the JSON the
// handler reads with handler.Config ("{}" when empty).
func (h *Host) Compile(ctx context.Context, name string, wasm []byte, limits Limits, config []byte) (*Module, error) {
	limits = limits.WithDefaults()
	if len(config) == 0 {
		config = []byte("{}")
	}
	wasm, err := instrument(wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidModule, err)
	}
	// No WithCloseOnContextDone: its guard leaves the guest at every loop
	// iteration. The instrumented module stops itself (see instrument).
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCompilationCache(h.cache).
		WithMemoryLimitPages(limits.MemoryPages))
	m := &Module{name: name, h: h, rt: rt, limits: limits, config: config, pool: make(chan *instance, limits.Pool)}
	ok := false
	defer func() {
		if !ok {
			rt.Close(context.Background())
		}
	}()
	// Compile functions on every core: a Go module has thousands.
	compiled, err := rt.CompileModule(experimental.WithCompilationWorkers(ctx, runtime.GOMAXPROCS(0)), wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidModule, err)
	}
	m.compiled = compiled
	for _, f := range compiled.ImportedFunctions() {
		mod, fn, _ := f.Import()
		if mod != abi.HostModule && mod != wasi_snapshot_preview1.ModuleName {
			return nil, fmt.Errorf("%w: imports %s.%s; only %q and %q are provided", ErrInvalidModule, mod, fn, abi.HostModule, wasi_snapshot_preview1.ModuleName)
		}
	}
	if len(compiled.ImportedMemories()) > 0 {
		return nil, fmt.Errorf("%w: imports a memory", ErrInvalidModule)
	}
	exp := compiled.ExportedFunctions()
	for _, want := range []string{abi.ExportABI, abi.ExportAlloc, abi.ExportHandle} {
		if _, ok := exp[want]; !ok {
			return nil, fmt.Errorf("%w: does not export %s (build with the twinlog handler SDK, -buildmode=c-shared)", ErrInvalidModule, want)
		}
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return nil, fmt.Errorf("instantiate WASI: %w", err)
	}
	if err := m.instantiateHost(ctx); err != nil {
		return nil, fmt.Errorf("instantiate host functions: %w", err)
	}
	inst, err := m.newInstance(ctx)
	if err != nil {
		return nil, err
	}
	inst.stack[0] = 0
	if err := inst.call(ctx, inst.abiFn, m.limits.Timeout); err != nil || uint32(inst.stack[0]) != abi.Version {
		inst.close()
		return nil, fmt.Errorf("%w: ABI version %d, want %d", ErrInvalidModule, uint32(inst.stack[0]), abi.Version)
	}
	m.pool <- inst
	ok = true
	h.keepCompiled(ctx, wasm)
	return m, nil
}

// Name returns the name the module was compiled under.
func (m *Module) Name() string { return m.name }

// Limits returns the module's limits, defaults applied.
func (m *Module) Limits() Limits { return m.limits }

// Close closes every instance and the module's runtime.
func (m *Module) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	return m.rt.Close(ctx)
}

// instance is one instantiated module, used by one invocation at a time.
type instance struct {
	mod       api.Module
	mem       api.Memory
	abiFn     api.Function
	allocFn   api.Function
	handleFn  api.Function
	interrupt api.MutableGlobal
	stderr    *tailBuffer
	buf       uint32 // guest input buffer
	bufCap    uint32
	stack     [2]uint64
}

// errInterrupted is returned by call when the guest was stopped because
// its context ended; errOutOfTime when it was its own time budget.
var (
	errInterrupted = errors.New("host: interrupted")
	errOutOfTime   = errors.New("host: out of time")
)

// call calls f with the instance's stack, stopping the guest when ctx ends
// or after timeout: the interrupt global makes it trap within a few
// thousand loop iterations (see instrument). After an error the instance
// must be discarded.
func (i *instance) call(ctx context.Context, f api.Function, timeout time.Duration) error {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errOutOfTime)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { i.interrupt.Set(1) })
	err := f.CallWithStack(ctx, i.stack[:])
	if !stop() {
		// The interrupt was raised (or is being raised): whether or not
		// the call got past it, the instance is spent.
		return fmt.Errorf("%w: %w", errInterrupted, context.Cause(ctx))
	}
	return err
}

func (m *Module) newInstance(ctx context.Context) (*instance, error) {
	m.mu.Lock()
	m.seq++
	seq := m.seq
	m.mu.Unlock()
	stderr := &tailBuffer{max: 4096}
	// No start functions: the module has no start section (instrument
	// rejects one), and _initialize runs below under the interrupt.
	cfg := wazero.NewModuleConfig().
		WithName(fmt.Sprintf("%s#%d", m.name, seq)).
		WithStartFunctions().
		WithStdout(stderr).WithStderr(stderr).
		WithArgs(m.name).
		WithNanotime(stepClock(), 1)
	mod, err := m.rt.InstantiateModule(ctx, m.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w%s", err, stderr.suffix())
	}
	g, _ := mod.ExportedGlobal(interruptExport).(api.MutableGlobal)
	if g == nil {
		mod.Close(context.Background())
		return nil, errors.New("instantiate: the instrumented module exports no interrupt")
	}
	i := &instance{
		mod: mod, mem: mod.Memory(), stderr: stderr, interrupt: g,
		abiFn:    mod.ExportedFunction(abi.ExportABI),
		allocFn:  mod.ExportedFunction(abi.ExportAlloc),
		handleFn: mod.ExportedFunction(abi.ExportHandle),
	}
	// The guest's initializers are bounded like a call.
	if init := mod.ExportedFunction(abi.ExportInitialize); init != nil {
		if err := i.call(ctx, init, max(m.limits.Timeout, 5*time.Second)); err != nil {
			i.close()
			return nil, fmt.Errorf("instantiate: %w%s", err, stderr.suffix())
		}
	}
	return i, nil
}

// stepClock is a guest's monotonic clock: deterministic, it advances 1 µs
// per reading. (wazero's default advances 1 ms per reading, so the Go
// runtime in a guest believes time flies and runs its timers, scavenger
// and scheduler polls far too often.)
func stepClock() sys.Nanotime {
	var t int64
	return func() int64 {
		t += 1000
		return t
	}
}

func (i *instance) close() { i.mod.Close(context.Background()) }

// get returns a pooled instance or a new one.
func (m *Module) get(ctx context.Context) (*instance, error) {
	select {
	case i := <-m.pool:
		return i, nil
	default:
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return nil, errors.New("host: module closed")
	}
	return m.newInstance(ctx)
}

func (m *Module) put(i *instance) {
	select {
	case m.pool <- i:
	default:
		i.close()
	}
}

// tailBuffer keeps the last max bytes written to it: a guest's stderr, for
// reports.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) take() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(bytes.TrimSpace(t.b))
	t.b = t.b[:0]
	return s
}

func (t *tailBuffer) suffix() string {
	if s := t.take(); s != "" {
		return "; guest output: " + s
	}
	return ""
}

// CacheDir returns the conventional compilation cache directory inside a
// node's data directory.
func CacheDir(dataDir string) string { return filepath.Join(dataDir, "handlers", "wazero-cache") }
