package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/handlers"
	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/timetravel"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/wasm-handlers/host"
)

// ErrNotFound is returned for an unknown branch id.
var ErrNotFound = errors.New("simulate: no such branch")

// Options configures a Simulator. The zero value is valid.
type Options struct {
	// MaxBranches bounds the branches kept at once (each holds a copy of
	// the graph in memory). Default 16.
	MaxBranches int
	// ReadBatch is how many events of the main log are read at once while
	// replaying a window, and the most appended to a branch at once.
	// Default 4096.
	ReadBatch int
	// TimeResolution is the span of recorded time whose replayed events
	// may share one append to a branch, and so one event time (a log
	// stamps each append with one time): the branch's times are those
	// recorded, shifted, to within it. Default 1 second.
	TimeResolution time.Duration
	// Logger receives the branches' engines' reports. Default slog.Default().
	Logger *slog.Logger
	// HandlerHost compiles and runs the handlers of every branch, shared
	// with the live handlers (handlers.Options.Host) so that a branch
	// running a deployed handler compiles nothing. The simulator does not
	// close it. Default: a host of the simulator's own, keeping the last
	// KeptModules modules it compiled, with HandlerCacheDir.
	HandlerHost *host.Host
	// HandlerCacheDir is the compilation cache of the simulator's own
	// handler host (see host.CacheDir). Default: an in-memory cache.
	HandlerCacheDir string
	// ModuleDir is where the main log's handler deployments keep their
	// modules (handlers.Options.ModuleDir), read to run deployed handlers
	// in a branch. Default "": modules are in the deployment events.
	ModuleDir string
	// Dir, when set, keeps each branch on disk, in Dir/<id>: its overlay
	// is a file log and its description a JSON file, so Restore brings the
	// branches back after a restart, with their handlers, and resumes
	// their replays where they stopped. Default "": branches live in
	// memory and end with the process.
	Dir string
}

// Validate reports invalid options.
func (o *Options) Validate() error {
	if o.MaxBranches < 0 || o.ReadBatch < 0 || o.TimeResolution < 0 {
		return errors.New("simulate: negative option")
	}
	return nil
}

// Simulator creates and keeps branches forked from one log. It is safe for
// concurrent use.
type Simulator struct {
	log  eventlog.Log
	tt   *timetravel.Traveler
	opts Options
	// host runs the branches' handlers; the simulator's own unless
	// opts.HandlerHost is set.
	host *host.Host

	mu struct {
		sync.Mutex
		branches map[string]*Branch
		next     uint64
		closed   bool
	}
	// creating counts the Creates and Restores under way, which Close
	// waits for before closing the host.
	creating sync.WaitGroup
}

// KeptModules is how many handler modules a simulator's own host keeps
// compiled (host.Config.Keep): branches created one after another with the
// same handlers compile them once.
const KeptModules = 8

// New returns a simulator forking branches from log, as of points resolved
// and built by tt (which must read the same log).
func New(log eventlog.Log, tt *timetravel.Traveler, opts Options) (*Simulator, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.MaxBranches == 0 {
		opts.MaxBranches = 16
	}
	if opts.ReadBatch == 0 {
		opts.ReadBatch = 4096
	}
	if opts.TimeResolution == 0 {
		opts.TimeResolution = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Simulator{log: log, tt: tt, opts: opts, host: opts.HandlerHost}
	if s.host == nil {
		h, err := host.New(host.Config{CacheDir: opts.HandlerCacheDir, Logger: opts.Logger, Keep: KeptModules})
		if err != nil {
			return nil, err
		}
		s.host = h
	}
	s.mu.branches = map[string]*Branch{}
	return s, nil
}

// Window is a span of the main log whose recorded telemetry a branch
// replays. The zero From is the fork point; the zero To is the log's head
// when the branch is created.
type Window struct {
	From, To timetravel.At
}

// Event is one synthetic event: exactly one of Patch (a JSON Patch of the
// twin, or of its Component) and Telemetry (a telemetry message of the
// twin, or of its Component).
type Event struct {
	TwinID    string          `json:"twinId"`
	Component string          `json:"component,omitempty"`
	Patch     json.RawMessage `json:"patch,omitempty"`
	Telemetry json.RawMessage `json:"telemetry,omitempty"`
}

// Handler names a handler to run in a branch: a version deployed in the
// main log (Name, and Version for another than the live one), or a module
// supplied with the request (Manifest and Module), which need not be
// deployed anywhere.
type Handler struct {
	Name     string             `json:"name,omitempty"`
	Version  string             `json:"version,omitempty"`
	Manifest *handlers.Manifest `json:"manifest,omitempty"`
	// Module is the WebAssembly module (base64 in JSON).
	Module []byte `json:"module,omitempty"`
}

// Request describes a branch.
type Request struct {
	// At is the fork point; the zero At forks at the log's head.
	At timetravel.At
	// Window, when not nil, replays the telemetry recorded in it.
	Window *Window
	// Speed is the replay's pace: 0 as fast as possible, N for N× the
	// recorded pace.
	Speed float64
	// Events are applied to the branch, in order, right after the fork and
	// before the replay; the first that fails fails Create.
	Events []Event
	// Actor names the caller in the branch's events.
	Actor string
	// DeployedHandlers runs, in the branch, every handler deployed (and
	// not disabled) in the main log at its head when the branch is
	// created.
	DeployedHandlers bool
	// Handlers run in the branch, deployed there in order after the
	// DeployedHandlers; one named like an earlier one replaces it. Their
	// outputs are written to the branch only.
	Handlers []Handler
}

func invalid(format string, args ...any) error {
	return engine.Errorf(engine.KindInvalid, "InvalidArgument", format, args...)
}

// Create forks a branch, applies req.Events to it and starts replaying the
// window in the background (see Branch.Wait). The branch is kept until
// Delete or Close.
func (s *Simulator) Create(ctx context.Context, req Request) (*Branch, error) {
	if req.Speed < 0 {
		return nil, invalid("speed must be 0 (as fast as possible) or positive, got %v", req.Speed)
	}
	for i, e := range req.Events {
		if e.TwinID == "" {
			return nil, invalid("event %d has no twinId", i)
		}
		if (len(e.Patch) == 0) == (len(e.Telemetry) == 0) {
			return nil, invalid("event %d must have exactly one of patch and telemetry", i)
		}
	}
	deploy, err := s.handlers(ctx, req)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil, errors.New("simulate: closed")
	}
	s.creating.Add(1)
	defer s.creating.Done()
	if len(s.mu.branches) >= s.opts.MaxBranches {
		s.mu.Unlock()
		return nil, engine.Errorf(engine.KindThrottled, "TooManyRequests", "at most %d simulations may exist at once; delete one first", s.opts.MaxBranches)
	}
	s.mu.next++
	id := "sim-" + strconv.FormatUint(s.mu.next, 10)
	s.mu.Unlock()

	fork, err := s.tt.Resolve(ctx, req.At)
	if err != nil {
		return nil, err
	}
	from, to, err := s.window(ctx, fork, req.Window)
	if err != nil {
		return nil, err
	}
	g, err := s.forkGraph(ctx, fork)
	if err != nil {
		return nil, err
	}
	origin := req.At.Time
	if origin.IsZero() && fork > 0 {
		evs, err := s.log.Read(ctx, fork, 1)
		if err != nil {
			return nil, fmt.Errorf("read fork event: %w", err)
		}
		if len(evs) > 0 {
			origin = time.Unix(0, evs[0].Time)
		}
	}
	b := &Branch{id: id, fork: fork, at: req.At, speed: req.Speed, from: from, to: to, created: time.Now(), done: make(chan struct{})}
	b.clock.Store(origin.UnixNano())
	if origin.IsZero() {
		b.clock.Store(0)
	}
	var overlay eventlog.Log = memlog.New(memlog.Options{Now: b.now})
	if s.opts.Dir != "" {
		b.dir = filepath.Join(s.opts.Dir, id)
		if overlay, err = openOverlay(b.dir, b.now, s.opts.Logger); err != nil {
			return nil, err
		}
	}
	b.log = NewOffsetLog(overlay, fork)
	b.graph = g
	if b.eng, err = engine.New(b.log, engine.Options{From: fork, Logger: s.opts.Logger}, g); err != nil {
		return nil, err
	}
	if err := b.eng.Start(ctx, nil); err != nil {
		b.log.Close()
		b.discard()
		return nil, fmt.Errorf("start branch engine: %w", err)
	}
	b.twins = twins.New(b.eng, g, twins.Options{})
	if len(deploy) > 0 {
		if err := b.startHandlers(ctx, s, req.Actor, deploy); err != nil {
			b.shut()
			b.discard()
			return nil, err
		}
	}
	if err := b.feedEvents(ctx, req.Actor, req.Events); err != nil {
		b.shut()
		b.discard()
		return nil, err
	}
	// Described once it is whole: a branch directory without its
	// description is the remains of a Create that failed, which Restore
	// removes.
	if b.dir != "" {
		if err := writeMeta(b.dir, b.meta(origin.UnixNano(), len(req.Events))); err != nil {
			b.shut()
			b.discard()
			return nil, err
		}
	}

	rctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	go b.replay(rctx, s.log, s.opts.ReadBatch, s.opts.TimeResolution)
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		b.stop()
		return nil, errors.New("simulate: closed")
	}
	s.mu.branches[id] = b
	s.mu.Unlock()
	return b, nil
}

// window resolves w to the positions from..to of the main log to replay;
// from > to means nothing to replay.
func (s *Simulator) window(ctx context.Context, fork uint64, w *Window) (from, to uint64, err error) {
	if w == nil {
		return 1, 0, nil
	}
	switch {
	case w.From.Position != 0:
		from = w.From.Position
	case !w.From.Time.IsZero():
		if from, err = s.log.SeekTime(ctx, w.From.Time); err != nil {
			return 0, 0, fmt.Errorf("seek window start: %w", err)
		}
	default:
		from = fork + 1
	}
	if to, err = s.tt.Resolve(ctx, w.To); err != nil {
		return 0, 0, err
	}
	return from, to, nil
}

// Main returns the main graph as of now: the live graph the traveler was
// given, or the graph built at the log's head.
func (s *Simulator) Main(ctx context.Context) (*twingraph.Snapshot, error) {
	if g := s.tt.Live(); g != nil {
		return g.Snapshot(), nil
	}
	return s.tt.AsOf(ctx, timetravel.At{})
}

// Get returns the branch id.
func (s *Simulator) Get(id string) (*Branch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.mu.branches[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return b, nil
}

// List returns the branches, oldest first.
func (s *Simulator) List() []*Branch {
	s.mu.Lock()
	out := make([]*Branch, 0, len(s.mu.branches))
	for _, b := range s.mu.branches {
		out = append(out, b)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *Branch) int {
		if c := len(a.id) - len(b.id); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	return out
}

// Delete stops branch id and forgets it.
func (s *Simulator) Delete(id string) error {
	s.mu.Lock()
	b, ok := s.mu.branches[id]
	delete(s.mu.branches, id)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	b.stop()
	return b.discard()
}

// Close stops every branch (those kept on disk stay there for Restore);
// Create fails afterwards.
func (s *Simulator) Close() {
	s.mu.Lock()
	s.mu.closed = true
	bs := s.mu.branches
	s.mu.branches = map[string]*Branch{}
	s.mu.Unlock()
	for _, b := range bs {
		b.stop()
	}
	s.creating.Wait()
	if s.opts.HandlerHost == nil {
		s.host.Close()
	}
}

// Branch is one simulation: a forked graph fed through its own overlay log.
type Branch struct {
	id       string
	fork     uint64
	at       timetravel.At
	speed    float64
	from, to uint64 // main log positions to replay
	created  time.Time
	dir      string // where the branch is kept; "" in memory

	// shift, when haveShift, is what the replay adds to recorded times;
	// otherwise the first event replayed sets it (see replayWindow).
	shift     int64
	haveShift bool

	log      *OffsetLog
	eng      *engine.Engine
	graph    *twingraph.Graph
	twins    *twins.Service
	handlers *handlers.Manager // nil when the branch runs none

	queriesOnce sync.Once
	queries     *graphquery.Runner

	clock  atomic.Int64 // the branch's time, Unix ns; 0: wall clock
	fed    atomic.Uint64
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	mu struct {
		sync.Mutex
		err error
	}
}

// now stamps the overlay's events: the branch's simulated time once it
// has one, the wall clock otherwise.
func (b *Branch) now() time.Time {
	if t := b.clock.Load(); t != 0 {
		return time.Unix(0, t)
	}
	return time.Now()
}

// ID returns the branch's id.
func (b *Branch) ID() string { return b.id }

// Graph returns the branch's graph.
func (b *Branch) Graph() *twingraph.Graph { return b.graph }

// Twins returns the branch's twin service, writing to its overlay log.
func (b *Branch) Twins() *twins.Service { return b.twins }

// Queries returns the runner of queries on the branch's graph; its
// continuation tokens page through the snapshot a first page read.
func (b *Branch) Queries() *graphquery.Runner {
	b.queriesOnce.Do(func() { b.queries = graphquery.New(b.graph, graphquery.Options{}) })
	return b.queries
}

// Wait blocks until the replay is over (done, failed or stopped) and
// returns its error.
func (b *Branch) Wait(ctx context.Context) error {
	select {
	case <-b.done:
		return b.err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Branch) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.err
}

// Status is a branch's progress.
type Status struct {
	ID string `json:"id"`
	// Fork is the main log position the branch forked at.
	Fork uint64 `json:"fork"`
	// At is the fork point as requested ("" for the head).
	At string `json:"at,omitempty"`
	// Position is the branch's position: Fork plus its own events.
	Position uint64 `json:"position"`
	// Fed counts the events fed to the branch: synthetic and replayed
	// telemetry messages (a telemetry.batch event counts its points).
	Fed uint64 `json:"eventsFed"`
	// Window is the span of main log positions replayed, when any.
	Window *[2]uint64 `json:"window,omitempty"`
	Speed  float64    `json:"speed"`
	// Time is the branch's simulated time, when it has one.
	Time    string `json:"time,omitempty"`
	Created string `json:"created"`
	Done    bool   `json:"done"`
	Error   string `json:"error,omitempty"`
	// Handlers are the handlers running in the branch.
	Handlers []*handlers.Status `json:"handlers,omitempty"`
}

// Status returns the branch's progress.
func (b *Branch) Status() Status {
	st := Status{ID: b.id, Fork: b.fork, At: b.at.String(), Position: b.eng.Applied(), Fed: b.fed.Load(),
		Speed: b.speed, Created: b.created.UTC().Format(time.RFC3339Nano)}
	if b.from <= b.to {
		st.Window = &[2]uint64{b.from, b.to}
	}
	if t := b.clock.Load(); t != 0 {
		st.Time = time.Unix(0, t).UTC().Format(time.RFC3339Nano)
	}
	if b.handlers != nil {
		st.Handlers = b.handlers.List(context.Background())
	}
	select {
	case <-b.done:
		st.Done = true
		if err := b.err(); err != nil {
			st.Error = err.Error()
		}
	default:
	}
	return st
}

func (b *Branch) feedEvents(ctx context.Context, actor string, evs []Event) error {
	for i, e := range evs {
		var err error
		if len(e.Patch) > 0 {
			if e.Component != "" {
				_, err = b.twins.PatchComponent(ctx, actor, e.TwinID, e.Component, e.Patch, twins.Cond{})
			} else {
				_, err = b.twins.PatchTwin(ctx, actor, e.TwinID, e.Patch, twins.Cond{})
			}
		} else {
			msg := b.id + "-" + strconv.Itoa(i)
			err = b.twins.SendTelemetry(ctx, actor, e.TwinID, e.Component, msg, "", e.Telemetry)
		}
		if err != nil {
			var ee *engine.Error
			if errors.As(err, &ee) {
				c := *ee
				c.Message = fmt.Sprintf("event %d: %s", i, ee.Message)
				return &c
			}
			return fmt.Errorf("event %d: %w", i, err)
		}
		b.fed.Add(1)
	}
	return nil
}

// replay appends the telemetry recorded at main log positions from..to to
// the overlay, each event stamped with its recorded time shifted so that
// the window's first event falls at the branch's time (the fork's), paced
// by speed; then it waits for the branch to settle.
func (b *Branch) replay(ctx context.Context, main eventlog.Log, batch int, res time.Duration) {
	err := b.replayWindow(ctx, main, batch, res)
	if err == nil {
		err = b.settle(ctx)
	}
	if err != nil && ctx.Err() == nil {
		b.mu.Lock()
		b.mu.err = err
		b.mu.Unlock()
	}
	close(b.done)
}

// replayed reports whether e is telemetry a window replays: per-point
// telemetry events and telemetry.batch events alike.
func replayed(e *event.Event) bool {
	switch e.Type {
	case twingraph.TypeTelemetry:
		return strings.HasPrefix(e.Stream, twingraph.TelemetryStream(""))
	case twingraph.TypeTelemetryBatch:
		return true
	}
	return false
}

// replayWindow appends the window's telemetry in batches of up to max
// events spanning less than res of recorded time, each stamped with its
// last event's time (shifted); at a pace (speed > 0) an event is appended
// once it is due, and what is pending is appended before waiting.
func (b *Branch) replayWindow(ctx context.Context, main eventlog.Log, max int, res time.Duration) error {
	var t0 int64
	shift, first := b.shift, true
	start := time.Now()
	pending := make([]event.Event, 0, max)
	var fed uint64
	var pendingFrom, pendingTo, pendingPos int64
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if t := pendingTo + shift; t > b.clock.Load() {
			b.clock.Store(t)
		}
		if _, err := b.log.Append(ctx, pending); err != nil {
			return fmt.Errorf("append replayed events up to %d: %w", pendingPos, err)
		}
		b.fed.Add(fed)
		pending, fed = pending[:0], 0
		return nil
	}
	for pos := b.from; pos <= b.to; {
		evs, err := main.Read(ctx, pos, min(max, int(min(b.to-pos+1, 1<<30))))
		if err != nil {
			return fmt.Errorf("read main log at %d: %w", pos, err)
		}
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			e := &evs[i]
			if e.Position > b.to {
				break
			}
			if !replayed(e) {
				continue
			}
			if first {
				first = false
				t0 = e.Time
				if !b.haveShift {
					if origin := b.clock.Load(); origin != 0 && origin > e.Time {
						shift = origin - e.Time
					}
				}
			}
			if len(pending) > 0 && (len(pending) == max || e.Time-pendingFrom >= int64(res)) {
				if err := flush(); err != nil {
					return err
				}
			}
			if b.speed > 0 {
				// Pace against the start of the replay, not the previous
				// event, so that slow appends do not accumulate drift.
				due := start.Add(time.Duration(float64(e.Time-t0) / b.speed))
				if d := time.Until(due); d > 0 {
					if err := flush(); err != nil {
						return err
					}
					t := time.NewTimer(d)
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
						return ctx.Err()
					}
				}
			}
			if len(pending) == 0 {
				pendingFrom = e.Time
			}
			pendingTo, pendingPos = e.Time, int64(e.Position)
			// The copy's cause is the recorded event: a restored branch
			// resumes after the last one copied.
			pending = append(pending, event.Event{Stream: e.Stream, Type: e.Type, Actor: e.Actor, CausationID: e.ID(),
				CorrelationID: replayCorrelation, SchemaVersion: e.SchemaVersion, Payload: e.Payload})
			fed++
			if e.Type == twingraph.TypeTelemetryBatch {
				if n, err := twingraph.TelemetryBatchPoints(e.Payload); err == nil {
					fed += uint64(n) - 1
				}
			}
		}
		pos = evs[len(evs)-1].Position + 1
	}
	return flush()
}

// stop ends the replay, the branch's handlers and engine and its overlay
// log.
func (b *Branch) stop() {
	b.once.Do(func() {
		b.cancel()
		<-b.done
		b.shut()
	})
}

// shut stops what Create started before the replay.
func (b *Branch) shut() {
	if b.handlers != nil {
		b.handlers.Close()
	}
	b.eng.Stop()
	b.log.Close()
}
