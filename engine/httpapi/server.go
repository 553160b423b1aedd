package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/authz"
)

// Config configures a Server. The zero value is not usable: Engine is required.
type Config struct {
	// Engine is the running engine. Required.
	Engine *engine.Engine
	// Token is the bearer token granting full access. Required unless
	// AllowAnonymous is set.
	Token string
	// AllowAnonymous serves requests without credentials. Without access
	// control (RegisterAuth) they have full access; with it, they are the
	// principal "anonymous": AnonymousRole on the whole instance plus the
	// grants made to "anonymous". Default false.
	AllowAnonymous bool
	// AnonymousRole is the role anonymous callers hold on the whole
	// instance where access control is on. Default "": none, only the
	// grants made to "anonymous".
	AnonymousRole authz.Role
	// MaxBodyBytes bounds request bodies. Default 32 MiB (model batches can
	// be large; per-twin limits are enforced by the domain service).
	MaxBodyBytes int64
	// Logger receives request errors. Default slog.Default().
	Logger *slog.Logger
	// Ready reports whether the node is ready to serve (for /readyz); nil
	// means ready once the engine runs.
	Ready func() error
}

// Server is the HTTP face of one twinlog node.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	history *historyAPI    // set by RegisterHistory
	sims    *simulationAPI // set by RegisterSimulations
	auth    *Auth          // set by RegisterAuth
}

// New returns a server for cfg.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 32 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	return s
}

// Handle registers h for pattern behind authentication and api-version checks.
func (s *Server) Handle(pattern string, h func(http.ResponseWriter, *http.Request) error) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
			s.writeError(w, r, engine.Errorf(engine.KindInternal, "InternalServerError", "internal error"))
		}
	}()
	if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
		var err error
		if r, err = s.authenticate(r); err != nil { // auth.go
			s.writeError(w, r, err)
			return
		}
		if err := checkAPIVersion(r); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	}
	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		// No route: answer in ADT's error shape rather than the mux's
		// plain text, keeping its status (404, or 405 for a known path).
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", rec.Header().Get("Allow"))
			s.writeError(w, r, engine.Errorf(engine.KindMethod, "MethodNotAllowed", "%s is not supported on %s", r.Method, r.URL.Path))
			return
		}
		s.writeError(w, r, engine.Errorf(engine.KindNotFound, "ResourceNotFound", "no resource at %s", r.URL.Path))
		return
	}
	if err := s.authorize(r, pattern); err != nil { // auth.go
		s.writeError(w, r, err)
		return
	}
	// The mux itself sets the request's path values.
	s.mux.ServeHTTP(w, r)
}

// minAPIVersion is the first generally available ADT data-plane version.
const minAPIVersion = "2020-10-31"

// checkAPIVersion accepts a missing api-version (for hand-written requests)
// and every dated version from 2020-10-31 on, previews included.
func checkAPIVersion(r *http.Request) error {
	v := queryParam(r.URL.RawQuery, "api-version")
	if v == "" {
		return nil
	}
	date, _, _ := strings.Cut(v, "-preview")
	if len(date) != len("2006-01-02") {
		return engine.Errorf(engine.KindInvalid, "InvalidArgument", "api-version %q is not a valid version", v)
	}
	if _, err := time.Parse("2006-01-02", date); err != nil {
		return engine.Errorf(engine.KindInvalid, "InvalidArgument", "api-version %q is not a valid version", v)
	}
	if date < minAPIVersion {
		return engine.Errorf(engine.KindInvalid, "UnsupportedApiVersion", "api-version %q is not supported; use %s or later", v, minAPIVersion)
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	err := s.cfg.Engine.Err()
	if err == nil && s.cfg.Ready != nil {
		err = s.cfg.Ready()
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "reason": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "applied": s.cfg.Engine.Applied()})
}

// requestContext bounds a request's work.
func requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 60*time.Second)
}

// queryHas reports whether the request's query has key, parsing the query
// only when its raw text names key or has escapes (hot paths ask for keys
// that are rarely there).
func queryHas(r *http.Request, key string) bool {
	raw := r.URL.RawQuery
	if raw == "" || !strings.Contains(raw, key) && !strings.Contains(raw, "%") {
		return false
	}
	return r.URL.Query().Has(key)
}

// queryParam returns the first value of key in a raw query string without
// parsing the whole query (the hot path reads only api-version).
func queryParam(raw, key string) string {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
		}
		return v
	}
	return ""
}
