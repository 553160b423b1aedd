package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/processors/routes"
)

// RegisterRoutes serves ADT's event routes API (/eventroutes: list, get,
// put {endpointName, filter}, delete), endpoints (/endpoints: the same
// verbs; {endpointType: webhook|nats|mqtt, url, subject, topic, mode,
// deadLetterAfter}), and each route's dead letters (GET
// /eventroutes/{id}/deadletters, POST
// /eventroutes/{id}/deadletters/{position}/redrive).
func (s *Server) RegisterRoutes(rt *routes.Router) {
	s.Handle("GET /eventroutes", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]any{"value": rt.Routes(), "nextLink": nil})
		return nil
	})
	s.Handle("GET /eventroutes/{id}", func(w http.ResponseWriter, r *http.Request) error {
		route, ok := rt.Route(r.PathValue("id"))
		if !ok {
			return engine.Errorf(engine.KindNotFound, "EventRouteNotFound", "event route %s does not exist", r.PathValue("id"))
		}
		writeJSON(w, http.StatusOK, route)
		return nil
	})
	s.Handle("PUT /eventroutes/{id}", func(w http.ResponseWriter, r *http.Request) error {
		var body routes.Route
		if err := decodeJSONBody(r, &body); err != nil {
			return err
		}
		body.ID, body.From = r.PathValue("id"), 0
		ctx, cancel := requestContext(r)
		defer cancel()
		if err := rt.PutRoute(ctx, actor(r), body); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.Handle("DELETE /eventroutes/{id}", func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := requestContext(r)
		defer cancel()
		if err := rt.DeleteRoute(ctx, actor(r), r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.Handle("GET /eventroutes/{id}/deadletters", func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := requestContext(r)
		defer cancel()
		dls, err := rt.DeadLetters(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		if dls == nil {
			dls = []routes.DeadLetter{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": dls, "nextLink": nil})
		return nil
	})
	s.Handle("POST /eventroutes/{id}/deadletters/{position}/redrive", func(w http.ResponseWriter, r *http.Request) error {
		pos, err := strconv.ParseUint(r.PathValue("position"), 10, 64)
		if err != nil {
			return engine.Errorf(engine.KindInvalid, "InvalidArgument", "dead letter position %q is not a number", r.PathValue("position"))
		}
		ctx, cancel := requestContext(r)
		defer cancel()
		if err := rt.Redrive(ctx, actor(r), r.PathValue("id"), pos); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})

	s.Handle("GET /endpoints", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]any{"value": rt.Endpoints(), "nextLink": nil})
		return nil
	})
	s.Handle("GET /endpoints/{name}", func(w http.ResponseWriter, r *http.Request) error {
		ep, ok := rt.Endpoint(r.PathValue("name"))
		if !ok {
			return engine.Errorf(engine.KindNotFound, "EndpointNotFound", "endpoint %s does not exist", r.PathValue("name"))
		}
		writeJSON(w, http.StatusOK, ep)
		return nil
	})
	s.Handle("PUT /endpoints/{name}", func(w http.ResponseWriter, r *http.Request) error {
		var body routes.Endpoint
		if err := decodeJSONBody(r, &body); err != nil {
			return err
		}
		body.Name = r.PathValue("name")
		ctx, cancel := requestContext(r)
		defer cancel()
		if err := rt.PutEndpoint(ctx, actor(r), body); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.Handle("DELETE /endpoints/{name}", func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := requestContext(r)
		defer cancel()
		if err := rt.DeleteEndpoint(ctx, actor(r), r.PathValue("name")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// decodeJSONBody decodes a small JSON request body into v.
func decodeJSONBody(r *http.Request, v any) error {
	if r.Body == nil {
		return engine.Errorf(engine.KindInvalid, "InvalidArgument", "a JSON body is required")
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	if err := dec.Decode(v); err != nil {
		return engine.Errorf(engine.KindInvalid, "InvalidArgument", "the body is not valid JSON: %v", err)
	}
	return nil
}
