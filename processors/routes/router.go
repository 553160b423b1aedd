package routes

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
)

// Streams and event types of the routing configuration and route state.
const (
	// ConfigStream holds endpoint and route definitions.
	ConfigStream = "routing"

	TypeEndpointPut     = "endpoint.put"
	TypeEndpointDeleted = "endpoint.deleted"
	TypeRoutePut        = "eventroute.put"
	TypeRouteDeleted    = "eventroute.deleted"
	TypeCheckpoint      = "route.checkpoint"
	TypeDeadLettered    = "route.deadlettered"
	TypeRedriven        = "route.redriven"
)

// CursorStream is the stream of a route's checkpoints.
func CursorStream(route string) string { return "routes/" + route + "/cursor" }

// DeadLetterStream is the stream of a route's dead letters.
func DeadLetterStream(route string) string { return "routes/" + route + "/deadletter" }

// Endpoint kinds.
const (
	KindWebhook = "webhook"
	KindNATS    = "nats"
	KindMQTT    = "mqtt"
)

// Endpoint is a destination of event routes.
type Endpoint struct {
	Name string `json:"name"`
	// Kind is webhook, nats or mqtt.
	Kind string `json:"endpointType"`
	// URL is the webhook URL, or the NATS / MQTT server URL (empty: the
	// node's own connection).
	URL string `json:"url,omitempty"`
	// Subject is the NATS subject; Topic the MQTT topic.
	Subject string `json:"subject,omitempty"`
	Topic   string `json:"topic,omitempty"`
	// Mode is the webhook's CloudEvents HTTP content mode: structured
	// (default), binary or batch.
	Mode string `json:"mode,omitempty"`
	// Concurrency is how many requests a webhook has in flight, twins
	// spread over them (one twin's events stay in order). Default 8.
	Concurrency int `json:"concurrency,omitempty"`
	// DeadLetterAfter is how long a failing delivery is retried before its
	// events are dead-lettered, as a Go duration. Default the router's
	// (24h).
	DeadLetterAfter string `json:"deadLetterAfter,omitempty"`
}

// Route is an ADT event route.
type Route struct {
	ID           string `json:"id"`
	EndpointName string `json:"endpointName"`
	Filter       string `json:"filter"`
	// From is the log position the route was created at; it delivers events
	// after it. Set by the router.
	From uint64 `json:"from,omitempty"`
}

// Options configures a Router. The zero value is valid.
type Options struct {
	// Source is the CloudEvents source (the instance host name). Default
	// "twinlog.local".
	Source string
	// DeadLetterAfter is how long delivery is retried before the events
	// are dead-lettered. Default 24h.
	DeadLetterAfter time.Duration
	// InitialBackoff and MaxBackoff bound the retry intervals. Defaults
	// 100ms and 1m.
	InitialBackoff, MaxBackoff time.Duration
	// MaxBatch bounds the events of one delivery. Default 1000.
	MaxBatch int
	// CheckpointEvery is how often a moving cursor is checkpointed into the
	// log. Default 1s.
	CheckpointEvery time.Duration
	// NATS is the connection of NATS endpoints without a URL.
	NATS *nats.Conn
	// HTTPClient posts webhooks. Default a client with a 30 s timeout.
	HTTPClient *http.Client
	// Models resolves twins' models for dataschema and modelId.
	Models Models
	// Logger receives delivery failures. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Source == "" {
		o.Source = "twinlog.local"
	}
	if o.DeadLetterAfter == 0 {
		o.DeadLetterAfter = 24 * time.Hour
	}
	if o.InitialBackoff == 0 {
		o.InitialBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = time.Minute
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 1000
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Router delivers the log's notifications to endpoints along event routes.
// Each route runs on its own goroutine from its own durable cursor, so a
// slow or failing endpoint delays only its routes, never writes or other
// routes. Delivery is at least once: the cursor is checkpointed after
// delivery, and a restart resumes after the last checkpoint.
type Router struct {
	log  eventlog.Log
	opts Options

	mu struct {
		sync.Mutex
		endpoints map[string]Endpoint
		routes    map[string]Route
		workers   map[string]*worker
		ctx       context.Context
	}
	sinkMaker func(ep *Endpoint) (Sink, error) // tests and MQTT override
}

// New returns a router over log. Call Start to load the configuration and
// start delivering.
func New(log eventlog.Log, opts Options) *Router {
	opts.defaults()
	r := &Router{log: log, opts: opts}
	r.mu.endpoints = map[string]Endpoint{}
	r.mu.routes = map[string]Route{}
	r.mu.workers = map[string]*worker{}
	return r
}

// SetSinkMaker overrides how sinks are made for endpoints of kinds the
// router does not know (MQTT, which the mqtt package provides). It is
// consulted first; returning nil, nil falls back to the built-in kinds.
func (r *Router) SetSinkMaker(f func(ep *Endpoint) (Sink, error)) { r.sinkMaker = f }

// Start reads the routing configuration from the log and starts every
// route. Routes run until ctx ends or Stop.
func (r *Router) Start(ctx context.Context) error {
	evs, err := readAll(ctx, r.log, ConfigStream)
	if err != nil {
		return fmt.Errorf("read routing config: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range evs {
		r.applyConfig(&evs[i])
	}
	r.mu.ctx = ctx
	for id := range r.mu.routes {
		r.startLocked(id)
	}
	return nil
}

func (r *Router) applyConfig(e *event.Event) {
	switch e.Type {
	case TypeEndpointPut:
		var ep Endpoint
		if json.Unmarshal(e.Payload, &ep) == nil {
			r.mu.endpoints[ep.Name] = ep
		}
	case TypeEndpointDeleted:
		var ep Endpoint
		if json.Unmarshal(e.Payload, &ep) == nil {
			delete(r.mu.endpoints, ep.Name)
		}
	case TypeRoutePut:
		var rt Route
		if json.Unmarshal(e.Payload, &rt) == nil {
			if rt.From == 0 {
				rt.From = e.Position
			}
			r.mu.routes[rt.ID] = rt
		}
	case TypeRouteDeleted:
		var rt Route
		if json.Unmarshal(e.Payload, &rt) == nil {
			delete(r.mu.routes, rt.ID)
		}
	}
}

// Stop stops every route, checkpointing its cursor.
func (r *Router) Stop() {
	r.mu.Lock()
	ws := r.mu.workers
	r.mu.workers = map[string]*worker{}
	r.mu.ctx = nil
	r.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func invalid(code, format string, args ...any) error {
	return engine.Errorf(engine.KindInvalid, code, format, args...)
}

// PutEndpoint adds or replaces an endpoint. Routes using it restart.
func (r *Router) PutEndpoint(ctx context.Context, actor string, ep Endpoint) error {
	if !idRE.MatchString(ep.Name) {
		return invalid("InvalidArgument", "endpoint name %q must be 1-64 letters, digits, '-', '_' or '.'", ep.Name)
	}
	switch ep.Kind {
	case KindWebhook:
		if ep.URL == "" {
			return invalid("InvalidArgument", "a webhook endpoint needs a url")
		}
		switch ep.Mode {
		case "", ModeStructured, ModeBinary, ModeBatch:
		default:
			return invalid("InvalidArgument", "mode %q is not structured, binary or batch", ep.Mode)
		}
	case KindNATS:
		if ep.Subject == "" {
			return invalid("InvalidArgument", "a nats endpoint needs a subject")
		}
	case KindMQTT:
		if ep.Topic == "" {
			return invalid("InvalidArgument", "an mqtt endpoint needs a topic")
		}
	default:
		return invalid("InvalidArgument", "endpointType %q is not webhook, nats or mqtt", ep.Kind)
	}
	if ep.DeadLetterAfter != "" {
		if d, err := time.ParseDuration(ep.DeadLetterAfter); err != nil || d <= 0 {
			return invalid("InvalidArgument", "deadLetterAfter %q is not a positive duration", ep.DeadLetterAfter)
		}
	}
	if _, err := r.appendConfig(ctx, actor, TypeEndpointPut, ep); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.endpoints[ep.Name] = ep
	for id, rt := range r.mu.routes {
		if rt.EndpointName == ep.Name {
			r.restartLocked(id)
		}
	}
	return nil
}

// Endpoint returns an endpoint by name.
func (r *Router) Endpoint(name string) (Endpoint, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ep, ok := r.mu.endpoints[name]
	return ep, ok
}

// Endpoints lists the endpoints by name.
func (r *Router) Endpoints() []Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Endpoint, 0, len(r.mu.endpoints))
	for _, ep := range r.mu.endpoints {
		out = append(out, ep)
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return cmpStr(a.Name, b.Name) })
	return out
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// DeleteEndpoint deletes an endpoint no route uses.
func (r *Router) DeleteEndpoint(ctx context.Context, actor, name string) error {
	r.mu.Lock()
	_, ok := r.mu.endpoints[name]
	var users []string
	for id, rt := range r.mu.routes {
		if rt.EndpointName == name {
			users = append(users, id)
		}
	}
	r.mu.Unlock()
	if !ok {
		return engine.Errorf(engine.KindNotFound, "EndpointNotFound", "endpoint %s does not exist", name)
	}
	if len(users) > 0 {
		return engine.Errorf(engine.KindConflict, "EndpointInUse", "endpoint %s is used by routes %v", name, users)
	}
	if _, err := r.appendConfig(ctx, actor, TypeEndpointDeleted, Endpoint{Name: name}); err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.mu.endpoints, name)
	r.mu.Unlock()
	return nil
}

// PutRoute adds or replaces an event route (ADT EventRoutes_Add). A new
// route delivers events appended after it was created.
func (r *Router) PutRoute(ctx context.Context, actor string, rt Route) error {
	if !idRE.MatchString(rt.ID) {
		return invalid("EventRouteIdInvalid", "route id %q must be 1-64 letters, digits, '-', '_' or '.'", rt.ID)
	}
	if rt.EndpointName == "" || rt.Filter == "" {
		return invalid("InvalidArgument", "an event route needs endpointName and filter")
	}
	if _, ok := r.Endpoint(rt.EndpointName); !ok {
		return invalid("EventRouteEndpointInvalid", "endpoint %s does not exist", rt.EndpointName)
	}
	if _, err := ParseFilter(rt.Filter); err != nil {
		return invalid("EventRouteFilterInvalid", "%v", err)
	}
	r.mu.Lock()
	if old, ok := r.mu.routes[rt.ID]; ok {
		rt.From = old.From // keep the cursor's origin
	}
	r.mu.Unlock()
	res, err := r.appendConfig(ctx, actor, TypeRoutePut, rt)
	if err != nil {
		return err
	}
	if rt.From == 0 {
		rt.From = res.Last
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.routes[rt.ID] = rt
	r.restartLocked(rt.ID)
	return nil
}

// Route returns a route by id.
func (r *Router) Route(id string) (Route, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt, ok := r.mu.routes[id]
	return rt, ok
}

// Routes lists the routes by id.
func (r *Router) Routes() []Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Route, 0, len(r.mu.routes))
	for _, rt := range r.mu.routes {
		out = append(out, rt)
	}
	slices.SortFunc(out, func(a, b Route) int { return cmpStr(a.ID, b.ID) })
	return out
}

// DeleteRoute deletes a route; its cursor and dead letters stay in the log.
func (r *Router) DeleteRoute(ctx context.Context, actor, id string) error {
	if _, ok := r.Route(id); !ok {
		return engine.Errorf(engine.KindNotFound, "EventRouteNotFound", "event route %s does not exist", id)
	}
	if _, err := r.appendConfig(ctx, actor, TypeRouteDeleted, Route{ID: id}); err != nil {
		return err
	}
	r.mu.Lock()
	w := r.mu.workers[id]
	delete(r.mu.workers, id)
	delete(r.mu.routes, id)
	r.mu.Unlock()
	if w != nil {
		w.stop()
	}
	return nil
}

// Cursor returns the position up to which a route has delivered (or
// dead-lettered) every event.
func (r *Router) Cursor(id string) uint64 {
	r.mu.Lock()
	w := r.mu.workers[id]
	r.mu.Unlock()
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.cursor
}

func (r *Router) appendConfig(ctx context.Context, actor, typ string, v any) (eventlog.Result, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return eventlog.Result{}, err
	}
	if actor == "" {
		actor = "system"
	}
	res, err := r.log.Append(ctx, []event.Event{{Stream: ConfigStream, Type: typ, Actor: actor, SchemaVersion: 1, Payload: b}})
	if err != nil {
		return res, fmt.Errorf("append %s: %w", typ, err)
	}
	return res, nil
}

func (r *Router) restartLocked(id string) {
	if w := r.mu.workers[id]; w != nil {
		delete(r.mu.workers, id)
		// Stop outside the lock's critical path would be nicer; workers
		// never take r.mu, so stopping here cannot deadlock.
		w.stop()
	}
	r.startLocked(id)
}

func (r *Router) startLocked(id string) {
	if r.mu.ctx == nil {
		return
	}
	rt := r.mu.routes[id]
	ep, ok := r.mu.endpoints[rt.EndpointName]
	if !ok {
		return
	}
	w := &worker{r: r, route: rt, ep: ep, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(r.mu.ctx)
	w.cancel = cancel
	r.mu.workers[id] = w
	go w.run(ctx)
}

func readAll(ctx context.Context, log eventlog.Log, stream string) ([]event.Event, error) {
	var out []event.Event
	for from := uint64(1); ; {
		evs, err := log.ReadStream(ctx, stream, from, 1024)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			return out, nil
		}
		out = append(out, evs...)
		from = evs[len(evs)-1].Position + 1
	}
}

// checkpoint is the payload of route.checkpoint.
type checkpoint struct {
	Route    string `json:"route"`
	Position uint64 `json:"position"`
}

// DeadLetter is a batch of events whose delivery was given up.
type DeadLetter struct {
	// Position is the dead letter's own log position, its id for Redrive.
	Position uint64       `json:"position"`
	Route    string       `json:"route"`
	Endpoint string       `json:"endpoint"`
	Reason   string       `json:"reason"`
	Events   []CloudEvent `json:"events"`
}

type deadLetterPayload struct {
	Route    string          `json:"route"`
	Endpoint string          `json:"endpoint"`
	Reason   string          `json:"reason"`
	Events   json.RawMessage `json:"events"`
}

// DeadLetters lists a route's dead letters not yet redriven, oldest first.
func (r *Router) DeadLetters(ctx context.Context, route string) ([]DeadLetter, error) {
	evs, err := readAll(ctx, r.log, DeadLetterStream(route))
	if err != nil {
		return nil, err
	}
	redriven := map[uint64]bool{}
	for i := range evs {
		if evs[i].Type == TypeRedriven {
			var p struct{ Position uint64 }
			json.Unmarshal(evs[i].Payload, &p)
			redriven[p.Position] = true
		}
	}
	var out []DeadLetter
	for i := range evs {
		e := &evs[i]
		if e.Type != TypeDeadLettered || redriven[e.Position] {
			continue
		}
		var p deadLetterPayload
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			return nil, fmt.Errorf("decode dead letter at %d: %w", e.Position, err)
		}
		dl := DeadLetter{Position: e.Position, Route: p.Route, Endpoint: p.Endpoint, Reason: p.Reason}
		if err := json.Unmarshal(p.Events, &dl.Events); err != nil {
			return nil, fmt.Errorf("decode dead letter at %d: %w", e.Position, err)
		}
		out = append(out, dl)
	}
	return out, nil
}

// Redrive delivers a dead letter again, once, to the route's current
// endpoint, and marks it redriven when the endpoint accepts it.
func (r *Router) Redrive(ctx context.Context, actor, route string, position uint64) error {
	dls, err := r.DeadLetters(ctx, route)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(dls, func(d DeadLetter) bool { return d.Position == position })
	if i < 0 {
		return engine.Errorf(engine.KindNotFound, "DeadLetterNotFound", "route %s has no dead letter %d", route, position)
	}
	rt, ok := r.Route(route)
	if !ok {
		return engine.Errorf(engine.KindNotFound, "EventRouteNotFound", "event route %s does not exist", route)
	}
	ep, ok := r.Endpoint(rt.EndpointName)
	if !ok {
		return engine.Errorf(engine.KindNotFound, "EndpointNotFound", "endpoint %s does not exist", rt.EndpointName)
	}
	sink, err := r.makeSink(&ep)
	if err != nil {
		return err
	}
	defer sink.Close()
	if err := sink.Deliver(ctx, dls[i].Events); err != nil {
		return engine.Errorf(engine.KindUnavailable, "EndpointUnavailable", "redrive to %s: %v", ep.Name, err)
	}
	b, _ := json.Marshal(map[string]any{"position": position})
	_, err = r.log.Append(ctx, []event.Event{{Stream: DeadLetterStream(route), Type: TypeRedriven, Actor: actor, SchemaVersion: 1, Payload: b}})
	return err
}

func (r *Router) makeSink(ep *Endpoint) (Sink, error) {
	if r.sinkMaker != nil {
		s, err := r.sinkMaker(ep)
		if s != nil || err != nil {
			return s, err
		}
	}
	switch ep.Kind {
	case KindWebhook:
		return newWebhook(ep, r.opts.HTTPClient), nil
	case KindNATS:
		return newNATS(ep, r.opts.NATS)
	}
	return nil, fmt.Errorf("routes: no sink for %s endpoints", ep.Kind)
}

// worker runs one route.
type worker struct {
	r      *Router
	route  Route
	ep     Endpoint
	cancel context.CancelFunc
	done   chan struct{}

	mu struct {
		sync.Mutex
		cursor uint64
	}
}

func (w *worker) stop() {
	w.cancel()
	<-w.done
}

// eventsKey carries a delivery's typed events in its watermill message.
type eventsKey struct{}

func (w *worker) run(ctx context.Context) {
	defer close(w.done)
	lg := w.r.opts.Logger.With("route", w.route.ID, "endpoint", w.ep.Name)
	for ctx.Err() == nil {
		err := w.deliverLoop(ctx, lg)
		if ctx.Err() != nil {
			return
		}
		lg.Error("route stopped; restarting", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (w *worker) deliverLoop(ctx context.Context, lg *slog.Logger) error {
	filter, err := ParseFilter(w.route.Filter)
	if err != nil {
		return err
	}
	sink, err := w.r.makeSink(&w.ep)
	if err != nil {
		return err
	}
	defer sink.Close()
	cursor := w.route.From
	if v, err := w.r.log.StreamVersion(ctx, CursorStream(w.route.ID)); err != nil {
		return err
	} else if v > w.route.From {
		cps, err := w.r.log.ReadStream(ctx, CursorStream(w.route.ID), v, 1)
		if err != nil {
			return err
		}
		var cp checkpoint
		if len(cps) == 1 && json.Unmarshal(cps[0].Payload, &cp) == nil && cp.Position > cursor {
			cursor = cp.Position
		}
	}
	w.setCursor(cursor)
	saved := cursor
	defer func() {
		// Checkpoint what was delivered, even on shutdown.
		if c := w.cursor(); c > saved {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			w.checkpoint(sctx, c)
		}
	}()

	// Delivery goes through watermill's retry (exponential backoff up to
	// the dead-letter deadline) and poison-queue middleware; the poison
	// queue is the route's dead-letter stream in the log.
	deadline := w.r.opts.DeadLetterAfter
	if w.ep.DeadLetterAfter != "" {
		deadline, _ = time.ParseDuration(w.ep.DeadLetterAfter)
	}
	publish := func(msg *message.Message) ([]*message.Message, error) {
		evs, _ := msg.Context().Value(eventsKey{}).([]CloudEvent)
		return nil, sink.Deliver(msg.Context(), evs)
	}
	retry := middleware.Retry{
		MaxRetries:          math.MaxInt32,
		InitialInterval:     w.r.opts.InitialBackoff,
		MaxInterval:         w.r.opts.MaxBackoff,
		Multiplier:          2,
		RandomizationFactor: 0.2,
		MaxElapsedTime:      deadline,
		OnRetryHook: func(n int, d time.Duration) {
			if n == 1 || n%10 == 0 {
				lg.Warn("delivery failing; retrying", "attempt", n, "next", d)
			}
		},
	}
	poison, err := middleware.PoisonQueueWithFilter(&deadLetters{w: w}, DeadLetterStream(w.route.ID), func(err error) bool {
		return ctx.Err() == nil // never dead-letter because of shutdown
	})
	if err != nil {
		return err
	}
	handler := poison(retry.Middleware(publish))

	sub, err := w.r.log.Subscribe(ctx, cursor+1)
	if err != nil {
		return err
	}
	defer sub.Close()
	// Models of twins seen in the log since the cursor: the graph's
	// current state no longer knows a twin deleted since.
	seen := map[string]string{}
	models := func(twin string) string {
		if m, ok := seen[twin]; ok {
			return m
		}
		if w.r.opts.Models != nil {
			return w.r.opts.Models(twin)
		}
		return ""
	}
	lastCP := time.Now()
	var ces []CloudEvent
	for {
		batch, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		ces = ces[:0]
		for i := range batch {
			n := len(ces)
			ces, err = Convert(ces, &batch[i], w.r.opts.Source, models)
			if err != nil {
				lg.Error("skip undecodable event", "position", batch[i].Position, "err", err)
				ces = ces[:n]
				continue
			}
			for j := n; j < len(ces); j++ {
				if ces[j].model != "" {
					seen[ces[j].Key] = ces[j].model
				}
			}
			kept := ces[:n]
			for j := n; j < len(ces); j++ {
				if filter.Match(&ces[j]) {
					kept = append(kept, ces[j])
				}
			}
			ces = kept
		}
		for len(ces) > 0 {
			k := min(len(ces), w.r.opts.MaxBatch)
			part := ces[:k]
			ces = ces[k:]
			msg := message.NewMessage(strconv.FormatUint(part[0].Position, 10), nil)
			msg.SetContext(context.WithValue(ctx, eventsKey{}, part))
			if _, err := handler(msg); err != nil {
				return err // shutdown
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		w.setCursor(batch[len(batch)-1].Position)
		if time.Since(lastCP) >= w.r.opts.CheckpointEvery {
			if err := w.checkpoint(ctx, w.cursor()); err != nil {
				return err
			}
			saved = w.cursor()
			lastCP = time.Now()
		}
	}
}

func (w *worker) setCursor(p uint64) {
	w.mu.Lock()
	w.mu.cursor = p
	w.mu.Unlock()
}

func (w *worker) cursor() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.cursor
}

func (w *worker) checkpoint(ctx context.Context, pos uint64) error {
	b, _ := json.Marshal(checkpoint{Route: w.route.ID, Position: pos})
	_, err := w.r.log.Append(ctx, []event.Event{{Stream: CursorStream(w.route.ID), Type: TypeCheckpoint, Actor: "system", SchemaVersion: 1, Payload: b}})
	return err
}

// deadLetters is the poison queue: a watermill Publisher appending to the
// route's dead-letter stream.
type deadLetters struct{ w *worker }

func (d *deadLetters) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		evs, _ := m.Context().Value(eventsKey{}).([]CloudEvent)
		p := deadLetterPayload{Route: d.w.route.ID, Endpoint: d.w.ep.Name, Reason: m.Metadata.Get(middleware.ReasonForPoisonedKey), Events: mustJSON(evs)}
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = d.w.r.log.Append(ctx, []event.Event{{Stream: topic, Type: TypeDeadLettered, Actor: "system", SchemaVersion: 1, Payload: b}})
		cancel()
		if err != nil {
			return fmt.Errorf("dead-letter: %w", err)
		}
	}
	return nil
}

func (d *deadLetters) Close() error { return nil }
