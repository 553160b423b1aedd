package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/authz"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/wasm-handlers/host"
)

// Stream and event types of the handler registry.
const (
	// Stream holds handler.deployed, handler.disabled and handler.deleted.
	Stream = "handlers"

	TypeDeployed     = "handler.deployed"
	TypeDisabled     = "handler.disabled"
	TypeDeleted      = "handler.deleted"
	TypeCheckpoint   = "handler.checkpoint"
	TypeDeadLettered = "handler.deadlettered"
)

// SchemaVersion is the payload version of the handler events.
const SchemaVersion uint16 = 1

// CursorStream is the stream of a handler's checkpoints.
func CursorStream(name string) string { return "handlers/" + name + "/cursor" }

// DeadLetterStream is the stream of a handler's dead letters.
func DeadLetterStream(name string) string { return "handlers/" + name + "/deadletters" }

// Deployed is the payload of handler.deployed.
type Deployed struct {
	Manifest Manifest `json:"manifest"`
	// Module is the WebAssembly module, when it is kept in the log (no
	// Options.ModuleDir); else the module is in ModuleDir under its digest.
	Module []byte `json:"module,omitempty"`
	// SHA256 is the module's digest, hex.
	SHA256 string `json:"sha256"`
}

// Ref is the payload of handler.disabled and handler.deleted.
type Ref struct {
	Name string `json:"name"`
}

// Checkpoint is the payload of handler.checkpoint: every event up to
// Position was handled.
type Checkpoint struct {
	Name     string `json:"name"`
	Position uint64 `json:"position"`
}

// DeadLetter is the payload of handler.deadlettered: an event the handler
// failed on after its retries.
type DeadLetter struct {
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	Position uint64    `json:"position"`
	Type     string    `json:"type"`
	Twin     string    `json:"twin"`
	Error    string    `json:"error"`
	Time     time.Time `json:"time"`
}

// Options configures a Manager. The zero value is valid.
type Options struct {
	// CacheDir is wazero's compilation cache directory (see
	// host.CacheDir). Default: an in-memory cache.
	CacheDir string
	// Host, when set, compiles and runs the handlers instead of a host of
	// the manager's own (CacheDir is then unused): a host shared with other
	// managers, which shares compiled code with them. The manager does
	// not close it.
	Host *host.Host
	// ModuleDir, when set, keeps deployed modules as files named by their
	// SHA-256 (written and synced before the deployment is appended), and
	// deployment events carry only the digest. Default: modules are kept in
	// the deployment events.
	ModuleDir string
	// MaxHops bounds cascades: an output whose hop count would exceed it
	// is dropped and reported. Default 8.
	MaxHops int
	// Retries is how often a failed batch is retried before its events are
	// isolated and dead-lettered. Default 2.
	Retries int
	// RetryInterval is the first backoff between retries. Default 10 ms.
	RetryInterval time.Duration
	// CheckpointInterval is the most time between a handled batch and
	// the checkpoint covering it. Default 1 s.
	CheckpointInterval time.Duration
	// Logger receives reports. Default slog.Default().
	Logger *slog.Logger
	// Grants, when set, turns access control on: a handler acts as
	// "handler:<name>" with the grants of its manifest, which are recorded
	// in this store (as grant events appended with the deployment) and
	// revoked when the handler is deleted. Default nil: handlers read and
	// write every twin.
	Grants *authz.Store
}

// Validate reports invalid options.
func (o *Options) Validate() error {
	if o.MaxHops < 0 || o.Retries < 0 || o.RetryInterval < 0 || o.CheckpointInterval < 0 {
		return errors.New("handlers: negative option")
	}
	return nil
}

// Manager deploys handlers and runs them over the log.
type Manager struct {
	eng   *engine.Engine
	log   eventlog.Log
	svc   *twins.Service
	graph *twingraph.Graph
	host  *host.Host
	opts  Options

	wlog   watermill.LoggerAdapter
	pubsub *gochannel.GoChannel
	// poison carries failed batches to the isolation handler. It is a
	// GoChannel of its own: a handler publishing a failed batch while
	// holding up the feeder's publish on pubsub must not need pubsub's
	// lock, which a closing subscription may be waiting to take.
	poison *gochannel.GoChannel
	router *message.Router
	ctx    context.Context
	cancel context.CancelFunc
	routed chan struct{}

	mu struct {
		sync.Mutex
		runners map[string]*runner
		version uint64 // of Stream
		seq     int
		started bool
	}
}

// New returns a manager running handlers on eng's log, writing through
// svc. Call Start.
func New(eng *engine.Engine, svc *twins.Service, opts Options) (*Manager, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.MaxHops == 0 {
		opts.MaxHops = 8
	}
	if opts.Retries == 0 {
		opts.Retries = 2
	}
	if opts.RetryInterval == 0 {
		opts.RetryInterval = 10 * time.Millisecond
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := opts.Host
	if h == nil {
		var err error
		if h, err = host.New(host.Config{CacheDir: opts.CacheDir, Logger: opts.Logger}); err != nil {
			return nil, err
		}
	}
	m := &Manager{eng: eng, log: eng.Log(), svc: svc, graph: svc.Graph(), host: h, opts: opts}
	m.mu.runners = map[string]*runner{}
	return m, nil
}

const poisonTopic = "handlers.poison"

// Start loads the deployments from the log, compiles the live handlers and
// starts running them from their cursors.
func (m *Manager) Start(ctx context.Context) error {
	m.wlog = watermill.NewSlogLoggerWithLevelMapping(m.opts.Logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	m.pubsub = gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true, PreserveContext: true}, m.wlog)
	m.poison = gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true, PreserveContext: true}, m.wlog)
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, m.wlog)
	if err != nil {
		return err
	}
	m.router = r
	r.AddMiddleware(middleware.Recoverer)
	r.AddConsumerHandler("handlers.isolate", poisonTopic, m.poison, m.isolate)
	m.ctx, m.cancel = context.WithCancel(context.Background())

	// Replay the registry stream.
	var evs []event.Event
	for from := uint64(0); ; {
		batch, err := m.log.ReadStream(ctx, Stream, from, 1024)
		if err != nil {
			return fmt.Errorf("read %s: %w", Stream, err)
		}
		if len(batch) == 0 {
			break
		}
		evs = append(evs, batch...)
		from = batch[len(batch)-1].Position + 1
	}
	m.mu.Lock()
	for i := range evs {
		if err := m.applyLocked(&evs[i], nil, nil); err != nil {
			m.mu.Unlock()
			return err
		}
	}
	runners := make([]*runner, 0, len(m.mu.runners))
	for _, r := range m.mu.runners {
		runners = append(runners, r)
	}
	m.mu.started = true
	m.mu.Unlock()

	m.routed = make(chan struct{})
	go func() {
		defer close(m.routed)
		if err := r.Run(m.ctx); err != nil {
			m.opts.Logger.Error("handler router stopped", "err", err)
		}
	}()
	<-r.Running()
	for _, rn := range runners {
		if err := m.startRunner(ctx, rn); err != nil {
			return err
		}
	}
	return nil
}

// Close stops every handler, checkpointing its cursor, and releases the
// modules.
func (m *Manager) Close() error {
	m.mu.Lock()
	runners := make([]*runner, 0, len(m.mu.runners))
	for _, r := range m.mu.runners {
		runners = append(runners, r)
	}
	m.mu.started = false
	m.mu.Unlock()
	for _, r := range runners {
		r.stop()
	}
	if m.cancel != nil {
		m.cancel()
	}
	if m.router != nil {
		m.router.Close()
		<-m.routed
	}
	if m.pubsub != nil {
		m.pubsub.Close()
		m.poison.Close()
	}
	for _, r := range runners {
		r.closeModules()
	}
	if m.opts.Host != nil {
		return nil
	}
	return m.host.Close()
}

// applyLocked applies one registry event. For a deployment being made
// now, d is its payload and mod the module compiled for it (so neither is
// decoded or compiled again). m.mu must be held.
func (m *Manager) applyLocked(e *event.Event, d *Deployed, mod *host.Module) error {
	m.mu.version = e.Position
	switch e.Type {
	case TypeDeployed:
		if d == nil {
			d = new(Deployed)
			if err := decode(e, d); err != nil {
				return err
			}
		}
		r := m.mu.runners[d.Manifest.Name]
		if r == nil {
			m.mu.seq++
			r = newRunner(m, d.Manifest.Name, m.mu.seq, e.Position)
			m.mu.runners[d.Manifest.Name] = r
		}
		if len(d.Module) == 0 && mod == nil {
			b, err := loadModule(m.opts.ModuleDir, d.SHA256)
			if err != nil {
				return fmt.Errorf("handler %s deployed at %d: %w", d.Manifest.Name, e.Position, err)
			}
			d.Module = b
		}
		v := &version{pos: e.Position, time: e.Timestamp(), manifest: d.Manifest, module: d.Module, sha: d.SHA256, mod: mod}
		d.Module = nil
		if v.manifest.Version == "" {
			v.manifest.Version = e.ID()
		}
		r.addEntry(entry{pos: e.Position, v: v})
	case TypeDisabled:
		var ref Ref
		if err := decode(e, &ref); err != nil {
			return err
		}
		if r := m.mu.runners[ref.Name]; r != nil {
			r.addEntry(entry{pos: e.Position})
		}
	case TypeDeleted:
		var ref Ref
		if err := decode(e, &ref); err != nil {
			return err
		}
		delete(m.mu.runners, ref.Name)
	}
	return nil
}

func decode(e *event.Event, p any) error {
	if e.SchemaVersion != SchemaVersion {
		return fmt.Errorf("%s at %d: unknown schema version %d", e.Type, e.Position, e.SchemaVersion)
	}
	if err := json.Unmarshal(e.Payload, p); err != nil {
		return fmt.Errorf("decode %s at %d: %w", e.Type, e.Position, err)
	}
	return nil
}

func newEvent(stream, typ, actor string, p any) (event.Event, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return event.Event{}, err
	}
	return event.Event{Stream: stream, Type: typ, Actor: actor, SchemaVersion: SchemaVersion, Payload: b}, nil
}

// MaxModuleBytes bounds a handler module.
const MaxModuleBytes = 32 << 20

// Deploy validates and compiles a handler module and records its
// deployment; the handler handles every event after the deployment. A
// deployment under an existing name rolls it to the new version (and
// re-enables it).
func (m *Manager) Deploy(ctx context.Context, actor string, man Manifest, module []byte) (*Status, error) {
	if err := man.Validate(); err != nil {
		return nil, err
	}
	if m.opts.Grants != nil && len(man.Grants) == 0 {
		return nil, invalidManifest(`handler %s has no grants: it would see no event and change nothing. Give it what it needs, e.g. "grants":[{"role":"writer","scope":{"kind":"instance"}}]`, man.Name)
	}
	if len(module) > MaxModuleBytes {
		return nil, engine.Errorf(engine.KindTooLarge, "PayloadTooLarge", "module of %d bytes exceeds the limit of %d bytes", len(module), MaxModuleBytes)
	}
	mod, err := m.host.Compile(ctx, man.Name, module, man.Limits.host(), man.Config)
	if err != nil {
		if errors.Is(err, host.ErrInvalidModule) {
			return nil, engine.Errorf(engine.KindInvalid, "InvalidModule", "%v", err)
		}
		return nil, engine.Errorf(engine.KindInternal, "InternalServerError", "compile module: %v", err)
	}
	sum := sha256.Sum256(module)
	d := Deployed{Manifest: man, Module: module, SHA256: hex.EncodeToString(sum[:])}
	if m.opts.ModuleDir != "" {
		if err := storeModule(m.opts.ModuleDir, d.SHA256, module); err != nil {
			mod.Close(ctx)
			return nil, err
		}
		d.Module = nil
	}
	ev, err := newEvent(Stream, TypeDeployed, actor, d)
	if err != nil {
		mod.Close(ctx)
		return nil, err
	}
	d.Module = module
	r, err := m.record(ctx, ev, man.Name, &d, mod, m.grantEvents(actor, &man)...)
	if err != nil {
		mod.Close(ctx)
		return nil, err
	}
	return r.status(), nil
}

// grantEvents returns the grant events that make the grants of the
// handler's principal those of man: each of man's grants, and the
// revocation of every other grant its principal holds. None where access
// control is off.
func (m *Manager) grantEvents(actor string, man *Manifest) []event.Event {
	if m.opts.Grants == nil {
		return nil
	}
	var evs []event.Event
	keep := map[string]bool{}
	for i := range man.Grants {
		ev, g, err := authz.GrantEvent(actor, man.grant(i))
		if err != nil {
			continue // Validate checked every grant
		}
		keep[g.ID] = true
		evs = append(evs, ev)
	}
	for _, g := range m.opts.Grants.GrantsOf(authz.HandlerPrincipal(man.Name)) {
		if !keep[g.ID] {
			evs = append(evs, authz.RevokeEvent(actor, g.ID))
		}
	}
	return evs
}

// record appends a registry event about handler name, and with it the
// events of extra, and applies it (d and mod as for applyLocked); it
// starts the runner of a new handler.
func (m *Manager) record(ctx context.Context, ev event.Event, name string, d *Deployed, mod *host.Module, extra ...event.Event) (*runner, error) {
	m.mu.Lock()
	res, err := m.eng.Append(ctx, append([]event.Event{ev}, extra...), eventlog.Expect{Stream: Stream, Version: m.mu.version})
	if err != nil {
		m.mu.Unlock()
		return nil, engine.AsError(err)
	}
	if len(extra) > 0 {
		// The handler's grants must be in force before it sees an event.
		if err := m.eng.WaitApplied(ctx, res.Last); err != nil {
			m.mu.Unlock()
			return nil, engine.AsError(err)
		}
	}
	ev.Position, ev.Time = res.First, res.Time
	old := m.mu.runners[name]
	err = m.applyLocked(&ev, d, mod)
	r := m.mu.runners[name]
	started := m.mu.started
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if old != nil && r == nil {
		old.stop()
		old.closeModules()
		return old, nil
	}
	if r != nil && r != old && started {
		if err := m.startRunner(ctx, r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func notFound(name string) *engine.Error {
	return engine.Errorf(engine.KindNotFound, "HandlerNotFound", "there is no handler %s", name)
}

func (m *Manager) runner(name string) (*runner, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.mu.runners[name]
	return r, ok
}

// Disable stops a handler from handling events after now; deploying it
// again re-enables it.
func (m *Manager) Disable(ctx context.Context, actor, name string) error {
	if _, ok := m.runner(name); !ok {
		return notFound(name)
	}
	ev, err := newEvent(Stream, TypeDisabled, actor, Ref{Name: name})
	if err != nil {
		return err
	}
	_, err = m.record(ctx, ev, name, nil, nil)
	return err
}

// Delete removes a handler.
func (m *Manager) Delete(ctx context.Context, actor, name string) error {
	if _, ok := m.runner(name); !ok {
		return notFound(name)
	}
	ev, err := newEvent(Stream, TypeDeleted, actor, Ref{Name: name})
	if err != nil {
		return err
	}
	_, err = m.record(ctx, ev, name, nil, nil, m.grantEvents(actor, &Manifest{Name: name})...)
	return err
}

// Get returns a handler's status.
func (m *Manager) Get(ctx context.Context, name string) (*Status, error) {
	r, ok := m.runner(name)
	if !ok {
		return nil, notFound(name)
	}
	return r.status(), nil
}

// List returns every handler's status, by name.
func (m *Manager) List(ctx context.Context) []*Status {
	m.mu.Lock()
	runners := make([]*runner, 0, len(m.mu.runners))
	for _, r := range m.mu.runners {
		runners = append(runners, r)
	}
	m.mu.Unlock()
	out := make([]*Status, 0, len(runners))
	for _, r := range runners {
		out = append(out, r.status())
	}
	slices.SortFunc(out, func(a, b *Status) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// WaitIdle blocks until every running handler has handled the log up to
// pos (and applied its outputs) or ctx ends.
func (m *Manager) WaitIdle(ctx context.Context, pos uint64) error {
	m.mu.Lock()
	runners := make([]*runner, 0, len(m.mu.runners))
	for _, r := range m.mu.runners {
		runners = append(runners, r)
	}
	m.mu.Unlock()
	for _, r := range runners {
		for r.cursor.Load() < pos {
			if r.stopped() {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Microsecond):
			}
		}
	}
	return nil
}

func (m *Manager) startRunner(ctx context.Context, r *runner) error {
	topic := fmt.Sprintf("handler/%s#%d", r.name, r.seq)
	h := m.router.AddConsumerHandler(topic, topic, m.pubsub, r.handleMessage)
	// A batch that failed because the handler is stopping is not
	// isolated: it is handled again after the restart.
	poison, err := middleware.PoisonQueueWithFilter(m.poison, poisonTopic, func(err error) bool {
		return m.ctx.Err() == nil && !errors.Is(err, context.Canceled)
	})
	if err != nil {
		return err
	}
	h.AddMiddleware(poison, middleware.Retry{
		MaxRetries:      m.opts.Retries,
		InitialInterval: m.opts.RetryInterval,
		Multiplier:      2,
		MaxInterval:     time.Second,
		Logger:          m.wlog,
		OnRetryHook:     func(int, time.Duration) { r.stats.retries.Add(1) },
	}.Middleware)
	if err := m.router.RunHandlers(m.ctx); err != nil {
		return err
	}
	select {
	case <-h.Started():
	case <-ctx.Done():
		return ctx.Err()
	}
	r.handler = h
	r.topic = topic
	return r.start(ctx)
}

func storeModule(dir, sha string, b []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create module dir: %w", err)
	}
	path := filepath.Join(dir, sha+".wasm")
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func loadModule(dir, sha string) ([]byte, error) {
	if dir == "" {
		return nil, errors.New("the module is kept in a module directory, and none is configured")
	}
	b, err := os.ReadFile(filepath.Join(dir, sha+".wasm"))
	if err != nil {
		return nil, fmt.Errorf("load module: %w", err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != sha {
		return nil, fmt.Errorf("module %s is corrupt", sha)
	}
	return b, nil
}
