package httpapi

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/authn"
	"github.com/twinlog/twinlog/engine/authz"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/processors/ingest"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// Auth is what the server needs to authenticate callers beyond the admin
// token and to authorize every request (RegisterAuth).
type Auth struct {
	// Verifier verifies bearer JWTs; nil accepts none.
	Verifier *authn.Verifier
	// Keys verifies API keys and is managed over /apikeys. Required.
	Keys *authn.Keys
	// Grants decides; managed over /grants. Required.
	Grants *authz.Store
	// Graph is the twin graph, for the model of the twin a request
	// addresses. Required.
	Graph interface{ Snapshot() *twingraph.Snapshot }
}

// RegisterAuth turns on per-principal authorization: callers authenticate
// with the admin token (the owner of everything, as before), a JWT or an
// API key, and each request is checked against the grants. It serves
// /grants, /apikeys and /audit (owner only).
func (s *Server) RegisterAuth(a *Auth) {
	s.auth = a
	s.Handle("GET /grants", s.listGrants)
	s.Handle("POST /grants", s.putGrant)
	s.Handle("GET /grants/{id}", s.getGrant)
	s.Handle("PUT /grants/{id}", s.putGrant)
	s.Handle("DELETE /grants/{id}", s.deleteGrant)
	s.Handle("GET /apikeys", s.listKeys)
	s.Handle("POST /apikeys", s.createKey)
	s.Handle("DELETE /apikeys/{id}", s.revokeKey)
	s.Handle("GET /audit", s.audit)
}

type principalKey struct{}

// caller is the authenticated principal of a request and the grants that
// apply to it.
type caller struct {
	p      authz.Principal
	grants *authz.Store
}

// connKey keys a connection's callerSlot in its context (ConnContext).
type connKey struct{}

// callerSlot holds the caller of the request an HTTP/1.x connection is
// serving. Such a connection serves one request at a time, so its caller
// can be kept there instead of in a copy of the request carrying a new
// context: that copy (several hundred bytes) was most of what an
// authenticated request allocated beyond one made with the admin token.
// set is false until the current request has been authenticated, and for
// the admin token.
type callerSlot struct {
	c   caller
	set bool
	// read is the twin a GET of /digitaltwins/{id} was authorized on,
	// which the handler answers with instead of looking it up again.
	read *twingraph.Twin
	// vis keeps the state of the request's query visibility predicate
	// from one request to the next (authz.Store.VisibleWith resets it).
	vis authz.Visibility
	// key is the API key the connection last presented and its principal,
	// valid while the key store's generation is gen: a client sends the
	// same key with every request, and verifying it (a SHA-256) is most
	// of what authenticating it costs. The grants are still read per
	// request.
	key struct {
		tok string
		gen uint64
		p   authz.Principal
	}
}

// ConnContext gives each connection its caller slot; it is meant for
// http.Server.ConnContext. Without it (or for HTTP/2, whose requests share
// a connection concurrently) the caller travels in the request's context.
func (s *Server) ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &callerSlot{})
}

// slot returns the caller slot of r's connection, or nil when r cannot use
// one.
func slot(r *http.Request) *callerSlot {
	if r.ProtoMajor != 1 {
		return nil
	}
	sl, _ := r.Context().Value(connKey{}).(*callerSlot)
	return sl
}

// callerOf returns r's authenticated caller; nil for the admin token, and
// where access control is off.
func callerOf(r *http.Request) *caller {
	if sl := slot(r); sl != nil {
		if sl.set {
			return &sl.c
		}
		return nil
	}
	c, _ := r.Context().Value(principalKey{}).(*caller)
	return c
}

// withCaller returns r carrying c as its caller: in its connection's slot
// where it has one, otherwise in a new context.
func withCaller(r *http.Request, c caller) *http.Request {
	if sl := slot(r); sl != nil {
		sl.c, sl.set = c, true
		return r
	}
	cp := new(caller) // not &c, which would move c to the heap on both paths
	*cp = c
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, cp))
}

var admin = &authz.Principal{Subject: "admin", Superuser: true}

// principal returns the request's caller; the admin (a superuser) when
// authorization is off.
func principal(r *http.Request) *authz.Principal {
	if c := callerOf(r); c != nil {
		return &c.p
	}
	return admin
}

// visible returns the query visibility predicate of the request's caller;
// nil when it may read every twin.
func visible(r *http.Request) func(id, model string) bool {
	if sl := slot(r); sl != nil {
		if sl.set {
			return sl.c.grants.VisibleWith(&sl.c.p, &sl.vis)
		}
		return nil
	}
	if c := callerOf(r); c != nil {
		return c.grants.Visible(&c.p)
	}
	return nil
}

// authorizedTwin returns the twin of the main graph that r, a GET of
// /digitaltwins/{id}, was authorized on; nil when there is none to reuse.
func authorizedTwin(r *http.Request) *twingraph.Twin {
	if sl := slot(r); sl != nil {
		return sl.read
	}
	return nil
}

// authenticate establishes the caller and returns r carrying it (and its
// name as the actor of the events it causes). The admin token is a
// superuser; so are anonymous callers (when enabled) where access control
// is off.
func (s *Server) authenticate(r *http.Request) (*http.Request, error) {
	sl := slot(r)
	if sl != nil {
		// Nothing of the connection's previous request carries over (vis
		// is reset by its next use; key is checked before it is used).
		sl.c, sl.set, sl.read = caller{}, false, nil
	}
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		if s.cfg.AllowAnonymous {
			return s.anonymous(r), nil
		}
		return r, engine.Errorf(engine.KindUnauthorized, "Unauthorized", "a bearer token is required")
	}
	if s.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.Token)) == 1 {
		return r, nil
	}
	if s.auth == nil {
		if s.cfg.AllowAnonymous && s.cfg.Token == "" {
			return r, nil
		}
		return r, engine.Errorf(engine.KindUnauthorized, "Unauthorized", "the bearer token is not valid")
	}
	var p authz.Principal
	var err error
	switch {
	case strings.HasPrefix(tok, authn.KeyPrefix):
		gen := s.auth.Keys.Generation()
		if sl != nil && sl.key.tok != "" && sl.key.gen == gen && subtle.ConstantTimeCompare([]byte(tok), []byte(sl.key.tok)) == 1 {
			p = sl.key.p
			break
		}
		if p, err = s.auth.Keys.Verify(tok); err == nil && sl != nil {
			sl.key.tok, sl.key.gen, sl.key.p = strings.Clone(tok), gen, p
		}
	case s.auth.Verifier != nil:
		p, err = s.auth.Verifier.Verify(r.Context(), tok)
	default:
		err = authn.ErrToken
	}
	if err != nil {
		// The reason (expired, wrong audience, ...) is for the server log,
		// not for a caller probing the configuration.
		s.log.Info("authentication failed", "method", r.Method, "path", r.URL.Path, "err", err)
		return r, engine.Errorf(engine.KindUnauthorized, "Unauthorized", "the bearer token is not valid")
	}
	// The caller is also the actor of the events it causes (see actor).
	return withCaller(r, caller{p: p, grants: s.auth.Grants}), nil
}

// anonymous returns r carrying the anonymous caller: without access
// control, the admin.
func (s *Server) anonymous(r *http.Request) *http.Request {
	if s.auth == nil {
		return r
	}
	return withCaller(r, caller{p: authz.Principal{Subject: authz.Anonymous, Role: s.cfg.AnonymousRole}, grants: s.auth.Grants})
}

// Errors of denied requests. A twin the caller may not read does not
// exist for it: 404, exactly as for a missing twin.
func errTwinNotFound(id string) error {
	return engine.Errorf(engine.KindNotFound, "DigitalTwinNotFound", "There is no digital twin instance that exists with the ID %s.", id) // as engine/twins says it
}

var errForbidden = engine.Errorf(engine.KindForbidden, "Forbidden", "the caller is not allowed to perform this operation")

// authorize checks the request routed to pattern against the caller's
// grants.
func (s *Server) authorize(r *http.Request, pattern string) error {
	if s.auth == nil {
		return nil
	}
	p := principal(r)
	if p.Superuser {
		return nil
	}
	method, path, _ := strings.Cut(pattern, " ")
	g := s.auth.Grants
	instance := func(a authz.Action) error {
		if g.Allowed(p, a, "", "") {
			return nil
		}
		return errForbidden
	}
	switch {
	case strings.HasPrefix(path, "/digitaltwins/{id}"):
		return s.authorizeTwin(r, p, method, path)
	case path == "/query", path == "/healthz", path == "/readyz":
		return nil // queries are filtered row by row
	case strings.HasPrefix(path, "/models"):
		if method == http.MethodGet {
			return instance(authz.ActReadModels)
		}
		return instance(authz.ActWriteModels)
	case path == "/ingest":
		return nil // decided point by point (ingestContext)
	case path == "/telemetry/models":
		return instance(authz.ActReadModels)
	case strings.HasPrefix(path, "/telemetry"):
		return s.authorizeTelemetryRead(r, p)
	case strings.HasPrefix(path, "/handlers"):
		return instance(authz.ActHandlers)
	case strings.HasPrefix(path, "/endpoints"), strings.HasPrefix(path, "/eventroutes"):
		return instance(authz.ActRoutes)
	}
	// Grants, API keys, audit, devices and anything new: owners only.
	return instance(authz.ActAdmin)
}

func (s *Server) authorizeTwin(r *http.Request, p *authz.Principal, method, path string) error {
	id := pathSegment(r, 2)
	var model string
	main := s.auth.Graph.Snapshot()
	snap := s.readGraph(r, main)
	t, ok := snap.Twin(id)
	if ok {
		model = t.Model
	}
	g := s.auth.Grants
	canRead := model != "" && g.Allowed(p, authz.ActRead, id, model)
	act := authz.ActWrite
	switch {
	case method == http.MethodGet:
		if !canRead {
			return errTwinNotFound(id)
		}
		if path == "/digitaltwins/{id}" && snap == main {
			if sl := slot(r); sl != nil {
				sl.read = t
			}
		}
		return nil
	case strings.HasSuffix(path, "/telemetry"):
		act = authz.ActTelemetry
	}
	if path == "/digitaltwins/{id}" && method == http.MethodPut {
		// Creating or replacing: the model scopes consulted are those of
		// the twin as it will be, and a refusal is 403 whether the twin
		// exists or not, so that it reveals nothing.
		newModel, err := bodyModel(r)
		if err != nil {
			return err
		}
		if (model == "" || g.Allowed(p, act, id, model)) && g.Allowed(p, act, id, newModel) {
			return nil
		}
		return errForbidden
	}
	if model != "" && g.Allowed(p, act, id, model) {
		if method == http.MethodPut && strings.HasPrefix(path, "/digitaltwins/{id}/relationships/") {
			// The target must be a twin the caller may read, or the
			// answer would tell whether a hidden twin exists.
			target, err := bodyTarget(r)
			if err != nil {
				return err
			}
			tm := ""
			if t, ok := snap.Twin(target); ok {
				tm = t.Model
			}
			if tm == "" || !g.Allowed(p, authz.ActRead, target, tm) {
				return engine.Errorf(engine.KindNotFound, "TargetTwinNotFound", "the target twin %s does not exist", target)
			}
		}
		return nil
	}
	if !canRead {
		return errTwinNotFound(id)
	}
	return errForbidden
}

// authorizeTelemetryRead lets a caller who may read every twin read any
// telemetry history, and others only that of twins they name (?twin=) and
// may read. A hidden twin and a missing one get the same 403.
func (s *Server) authorizeTelemetryRead(r *http.Request, p *authz.Principal) error {
	g := s.auth.Grants
	if g.Visible(p) == nil {
		return nil
	}
	ids := list(r.URL.Query(), "twin")
	if len(ids) == 0 {
		return engine.Errorf(engine.KindForbidden, "Forbidden", "the caller may read only some twins: name them with twin=")
	}
	snap := s.auth.Graph.Snapshot()
	for _, id := range ids {
		t, ok := snap.Twin(id)
		if !ok || !g.Allowed(p, authz.ActRead, id, t.Model) {
			return errForbidden
		}
	}
	return nil
}

// pathSegment returns the unescaped i-th segment of r's path ("" when
// absent).
func pathSegment(r *http.Request, i int) string {
	path := r.URL.EscapedPath()
	for ; i > 0; i-- {
		j := strings.IndexByte(path, '/')
		if j < 0 {
			return ""
		}
		path = path[j+1:]
	}
	if j := strings.IndexByte(path, '/'); j >= 0 {
		path = path[:j]
	}
	if !strings.Contains(path, "%") {
		return path
	}
	v, err := url.PathUnescape(path)
	if err != nil {
		return path
	}
	return v
}

// peekBody reads r's body (bounded like every body) and puts it back.
func peekBody(r *http.Request, maxBytes int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBytes+1))
	r.Body.Close()
	if err != nil {
		return nil, engine.Errorf(engine.KindInvalid, "InvalidArgument", "read request body: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}

func bodyModel(r *http.Request) (string, error) {
	b, err := peekBody(r, 32<<20)
	if err != nil {
		return "", err
	}
	var v struct {
		Metadata struct {
			Model string `json:"$model"`
		} `json:"$metadata"`
	}
	json.Unmarshal(b, &v) // a malformed body is the twin service's to report
	return v.Metadata.Model, nil
}

func bodyTarget(r *http.Request) (string, error) {
	b, err := peekBody(r, 32<<20)
	if err != nil {
		return "", err
	}
	var v struct {
		Target string `json:"$targetId"`
	}
	json.Unmarshal(b, &v)
	return v.Target, nil
}

func (s *Server) listGrants(w http.ResponseWriter, r *http.Request) error {
	gs := s.auth.Grants.Grants()
	items := make([]json.RawMessage, len(gs))
	for i := range gs {
		items[i], _ = json.Marshal(gs[i])
	}
	return writePage(w, r, items, defaultPageSize)
}

func (s *Server) getGrant(w http.ResponseWriter, r *http.Request) error {
	g, ok := s.auth.Grants.Grant(r.PathValue("id"))
	if !ok {
		return engine.Errorf(engine.KindNotFound, "GrantNotFound", "there is no grant %q", r.PathValue("id"))
	}
	writeJSON(w, http.StatusOK, g)
	return nil
}

func (s *Server) putGrant(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var g authz.Grant
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return engine.Errorf(engine.KindInvalid, "InvalidArgument", "the body must be a grant {\"principal\", \"role\", \"scope\"}: %v", err)
	}
	g.ID = r.PathValue("id")
	ctx, cancel := requestContext(r)
	defer cancel()
	out, err := s.auth.Grants.PutGrant(ctx, s.cfg.Engine, actor(r), g)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		status = http.StatusCreated
	}
	writeJSON(w, status, out)
	return nil
}

func (s *Server) deleteGrant(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := requestContext(r)
	defer cancel()
	if err := s.auth.Grants.RevokeGrant(ctx, s.cfg.Engine, actor(r), r.PathValue("id")); err != nil {
		return err
	}
	noContent(w, "")
	return nil
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) error {
	ks := s.auth.Keys.List()
	items := make([]json.RawMessage, len(ks))
	for i := range ks {
		items[i], _ = json.Marshal(ks[i])
	}
	return writePage(w, r, items, defaultPageSize)
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var req struct {
		Name string `json:"name"`
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return engine.Errorf(engine.KindInvalid, "InvalidArgument", "the body must be {\"name\": \"...\"}: %v", err)
		}
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	ki, key, err := s.auth.Keys.Create(ctx, s.cfg.Engine, actor(r), req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, struct {
		authn.KeyInfo
		Key       string `json:"key"`
		Principal string `json:"principal"`
	}{ki, key, "apikey:" + ki.ID})
	return nil
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := requestContext(r)
	defer cancel()
	if err := s.auth.Keys.Revoke(ctx, s.cfg.Engine, actor(r), r.PathValue("id")); err != nil {
		return err
	}
	noContent(w, "")
	return nil
}

// auditScanLimit bounds the events one /audit page reads; a page that hits
// it ends early with a continuation token.
const auditScanLimit = 1 << 20

// audit serves GET /audit?principal=&twin=&from=&to=: the changes (every
// event but telemetry) in log order, filtered by actor, twin and time
// (RFC 3339), paged by continuationToken (the next log position).
func (s *Server) audit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var from, to time.Time
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := q.Get(f.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return engine.Errorf(engine.KindInvalid, "InvalidArgument", "%s must be an RFC 3339 time, got %q", f.name, v)
			}
			*f.dst = t
		}
	}
	pos := uint64(1)
	if v := q.Get("continuationToken"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return engine.Errorf(engine.KindInvalid, "InvalidArgument", "the continuation token is not valid")
		}
		pos = n
	}
	size, err := pageSize(r, defaultPageSize)
	if err != nil {
		return err
	}
	actorWant, twin := q.Get("principal"), q.Get("twin")
	ctx, cancel := requestContext(r)
	defer cancel()
	log := s.cfg.Engine.Log()
	head := s.cfg.Engine.Applied()
	type entry struct {
		Position      uint64 `json:"position"`
		Time          string `json:"time"`
		Actor         string `json:"actor"`
		Stream        string `json:"stream"`
		Type          string `json:"type"`
		Twin          string `json:"twin,omitempty"`
		CorrelationID string `json:"correlationId,omitempty"`
	}
	var out []entry
	next := ""
	scanned := 0
scan:
	for pos <= head {
		evs, err := log.Read(ctx, pos, 1024)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			e := &evs[i]
			if e.Position > head {
				break scan
			}
			pos = e.Position + 1
			scanned++
			if !auditMatch(e, actorWant, twin, from, to) {
				if scanned >= auditScanLimit || !to.IsZero() && e.Timestamp().After(to) {
					break scan
				}
				continue
			}
			if len(out) == size {
				pos = e.Position
				next = strconv.FormatUint(pos, 10)
				break scan
			}
			en := entry{Position: e.Position, Time: e.Timestamp().Format(time.RFC3339Nano), Actor: e.Actor,
				Stream: e.Stream, Type: e.Type, CorrelationID: e.CorrelationID}
			en.Twin, _ = strings.CutPrefix(e.Stream, "twin/")
			if en.Twin == e.Stream {
				en.Twin = ""
			}
			out = append(out, en)
		}
	}
	if next == "" && scanned >= auditScanLimit && pos <= head {
		next = strconv.FormatUint(pos, 10)
	}
	items := make([]json.RawMessage, len(out))
	for i := range out {
		items[i], _ = json.Marshal(out[i])
	}
	writeRaw(w, http.StatusOK, appendList(nil, items, "continuationToken", next, true))
	return nil
}

// handlerActor reports whether actor is a write of handler principal p: a
// handler's writes carry its version and cause after the principal
// ("handler:<name>@<version>;c=...").
func handlerActor(actor, p string) bool {
	rest, ok := strings.CutPrefix(actor, p)
	return ok && strings.HasPrefix(p, "handler:") && strings.HasPrefix(rest, "@")
}

func auditMatch(e *event.Event, actor, twin string, from, to time.Time) bool {
	if e.Type == twingraph.TypeTelemetry || e.Type == twingraph.TypeTelemetryBatch {
		return false
	}
	if actor != "" && e.Actor != actor && !handlerActor(e.Actor, actor) {
		return false
	}
	if twin != "" && e.Stream != twingraph.TwinStream(twin) {
		return false
	}
	t := e.Timestamp()
	return (from.IsZero() || !t.Before(from)) && (to.IsZero() || !t.After(to))
}

// ingestContext returns ctx carrying the caller's per-twin telemetry rights
// for /ingest: points to twins the caller may not send to are rejected one
// by one, as DigitalTwinNotFound when it may not even see them.
func (s *Server) ingestContext(r *http.Request, ctx context.Context) context.Context {
	if s.auth == nil {
		return ctx
	}
	p := principal(r)
	if p.Superuser {
		return ctx
	}
	g := s.auth.Grants
	return ingest.WithAllow(ctx, func(id, model string) (send, see bool) {
		send = g.Allowed(p, authz.ActTelemetry, id, model)
		return send, send || g.Allowed(p, authz.ActRead, id, model)
	})
}
