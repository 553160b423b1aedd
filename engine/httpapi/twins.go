package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/twins"
)

// RegisterTwins serves ADT's models, digital twins, relationships,
// components and telemetry operations from svc. Reads with ?asOf= answer
// from the past (RegisterHistory), reads with ?branch= from a simulation
// (RegisterSimulations); writes refuse ?branch=.
func (s *Server) RegisterTwins(svc *twins.Service) {
	h := &twinHandlers{svc: svc}
	s.Handle("GET /models", h.listModels)
	s.Handle("POST /models", h.addModels)
	s.Handle("GET /models/{id}", h.getModel)
	s.Handle("PATCH /models/{id}", h.patchModel)
	s.Handle("DELETE /models/{id}", h.deleteModel)

	s.Handle("GET /digitaltwins/{id}", s.readOr(h.getTwin))
	s.Handle("PUT /digitaltwins/{id}", mainOnly(h.putTwin))
	s.Handle("PATCH /digitaltwins/{id}", mainOnly(h.patchTwin))
	s.Handle("DELETE /digitaltwins/{id}", mainOnly(h.deleteTwin))

	s.Handle("GET /digitaltwins/{id}/components/{component}", s.readOr(h.getComponent))
	s.Handle("PATCH /digitaltwins/{id}/components/{component}", mainOnly(h.patchComponent))

	s.Handle("GET /digitaltwins/{id}/relationships", s.readOr(h.listRelationships))
	s.Handle("GET /digitaltwins/{id}/relationships/{rel}", s.readOr(h.getRelationship))
	s.Handle("PUT /digitaltwins/{id}/relationships/{rel}", mainOnly(h.putRelationship))
	s.Handle("PATCH /digitaltwins/{id}/relationships/{rel}", mainOnly(h.patchRelationship))
	s.Handle("DELETE /digitaltwins/{id}/relationships/{rel}", mainOnly(h.deleteRelationship))
	s.Handle("GET /digitaltwins/{id}/incomingrelationships", s.readOr(h.listIncoming))

	s.Handle("POST /digitaltwins/{id}/telemetry", mainOnly(h.sendTelemetry))
	s.Handle("POST /digitaltwins/{id}/components/{component}/telemetry", mainOnly(h.sendTelemetry))
}

type twinHandlers struct {
	svc *twins.Service
}

// actor names the caller in the events a request causes.
func actor(r *http.Request) string {
	if c := callerOf(r); c != nil {
		return c.p.Subject
	}
	return "admin"
}

// exactBodyMax is the largest declared Content-Length readBody allocates
// up front (twice ADT's twin size limit); a larger body is read as it
// comes, so that many requests declaring large bodies they never send do
// not reserve memory.
const exactBodyMax = 64 << 10

func readBody(r *http.Request) ([]byte, error) { return readBodyTo(r, nil) }

// readBodyTo is readBody into dst's array when the body fits it.
func readBodyTo(r *http.Request, dst []byte) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	var b []byte
	var err error
	if n := r.ContentLength; n >= 0 && n <= exactBodyMax {
		// The size is known: one allocation of it, where ReadAll
		// starts at 512 bytes and grows.
		if n <= int64(cap(dst)) {
			b = dst[:n]
		} else {
			b = make([]byte, n)
		}
		if _, err = io.ReadFull(r.Body, b); err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("the body ended before its Content-Length of %d bytes", n)
		}
	} else {
		b, err = io.ReadAll(r.Body)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, engine.Errorf(engine.KindTooLarge, "PayloadTooLarge", "the request body exceeds %d bytes", mbe.Limit)
		}
		return nil, engine.Errorf(engine.KindInvalid, "InvalidArgument", "read request body: %v", err)
	}
	return b, nil
}

func cond(r *http.Request) twins.Cond {
	c := twins.Cond{IfMatch: r.Header.Get("If-Match")}
	if strings.TrimSpace(r.Header.Get("If-None-Match")) == "*" {
		c.IfNoneMatchAny = true
	}
	return c
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, engine.Errorf(engine.KindInvalid, "InvalidArgument", "%s must be true or false, got %q", name, v)
	}
	return b, nil
}

func writeEntity(w http.ResponseWriter, status int, body []byte, etag string) {
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	writeRaw(w, status, body)
}

func noContent(w http.ResponseWriter, etag string) {
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *twinHandlers) listModels(w http.ResponseWriter, r *http.Request) error {
	incl, err := boolParam(r, "includeModelDefinition")
	if err != nil {
		return err
	}
	var deps []string
	for _, v := range r.URL.Query()["dependenciesFor"] {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				deps = append(deps, id)
			}
		}
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	models, err := h.svc.ListModels(ctx, deps, incl)
	if err != nil {
		return err
	}
	items := make([]json.RawMessage, len(models))
	for i := range models {
		if items[i], err = json.Marshal(models[i]); err != nil {
			return err
		}
	}
	return writePage(w, r, items, defaultPageSize)
}

func (h *twinHandlers) addModels(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var docs []json.RawMessage
	if err := json.Unmarshal(body, &docs); err != nil {
		return engine.Errorf(engine.KindInvalid, "InvalidArgument", "the request body must be a JSON array of DTDL interfaces: %v", err)
	}
	if len(docs) == 0 {
		return engine.Errorf(engine.KindInvalid, "InvalidArgument", "the request body must contain at least one model")
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	models, err := h.svc.AddModels(ctx, actor(r), docs)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, models)
	return nil
}

func (h *twinHandlers) getModel(w http.ResponseWriter, r *http.Request) error {
	incl, err := boolParam(r, "includeModelDefinition")
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	m, err := h.svc.GetModel(ctx, r.PathValue("id"), incl)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (h *twinHandlers) patchModel(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	if err := h.svc.DecommissionModel(ctx, actor(r), r.PathValue("id"), body); err != nil {
		return err
	}
	noContent(w, "")
	return nil
}

func (h *twinHandlers) deleteModel(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := requestContext(r)
	defer cancel()
	if err := h.svc.DeleteModel(ctx, actor(r), r.PathValue("id")); err != nil {
		return err
	}
	noContent(w, "")
	return nil
}

func (h *twinHandlers) getTwin(w http.ResponseWriter, r *http.Request) error {
	// A point read does no blocking work: it needs no deadline of its own.
	// The twin is rendered into a recycled buffer: the ResponseWriter
	// copies what it is given.
	buf := answers.Get().(*[]byte)
	var body []byte
	var etag string
	if t := authorizedTwin(r); t != nil && t.ID == r.PathValue("id") {
		// The version the authorizer just read: no second lookup.
		body, etag = t.AppendJSON((*buf)[:0]), t.ETag()
	} else {
		var err error
		if body, etag, err = h.svc.AppendTwin(r.Context(), (*buf)[:0], r.PathValue("id")); err != nil {
			answers.Put(buf)
			return err
		}
	}
	writeEntity(w, http.StatusOK, body, etag)
	if cap(body) <= maxPooledAnswer {
		*buf = body[:0]
		answers.Put(buf)
	}
	return nil
}

func (h *twinHandlers) putTwin(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	out, etag, err := h.svc.PutTwin(ctx, actor(r), r.PathValue("id"), body, cond(r))
	if err != nil {
		return err
	}
	writeEntity(w, http.StatusOK, out, etag)
	return nil
}

// patchBodies recycles the buffers of JSON Patch bodies: the twin service
// keeps nothing of a patch's bytes once it returns.
var patchBodies = sync.Pool{New: func() any { return new([]byte) }}

// patchBodyMax is the largest buffer patchBodies keeps.
const patchBodyMax = 4 << 10

func (h *twinHandlers) patchTwin(w http.ResponseWriter, r *http.Request) error {
	buf := patchBodies.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= patchBodyMax {
			patchBodies.Put(buf)
		}
	}()
	body, err := readBodyTo(r, *buf)
	if err != nil {
		return err
	}
	*buf = body[:0]
	// No deadline of its own: a patch, once queued, is carried out
	// whatever becomes of the request (see twins.Service.PatchTwin).
	etag, err := h.svc.PatchTwin(r.Context(), actor(r), r.PathValue("id"), body, cond(r))
	if err != nil {
		return err
	}
	noContent(w, etag)
	return nil
}

func (h *twinHandlers) deleteTwin(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := requestContext(r)
	defer cancel()
	if err := h.svc.DeleteTwin(ctx, actor(r), r.PathValue("id"), cond(r)); err != nil {
		return err
	}
	noContent(w, "")
	return nil
}

func (h *twinHandlers) getComponent(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := requestContext(r)
	defer cancel()
	body, etag, err := h.svc.GetComponent(ctx, r.PathValue("id"), r.PathValue("component"))
	if err != nil {
		return err
	}
	writeEntity(w, http.StatusOK, body, etag)
	return nil
}

func (h *twinHandlers) patchComponent(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	etag, err := h.svc.PatchComponent(ctx, actor(r), r.PathValue("id"), r.PathValue("component"), body, cond(r))
	if err != nil {
		return err
	}
	noContent(w, etag)
	return nil
}

func (h *twinHandlers) listRelationships(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := requestContext(r)
	defer cancel()
	items, err := h.svc.ListRelationships(ctx, r.PathValue("id"), r.URL.Query().Get("relationshipName"))
	if err != nil {
		return err
	}
	return writePage(w, r, h.visibleEnds(r, items, "$targetId"), defaultPageSize)
}

func (h *twinHandlers) listIncoming(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := requestContext(r)
	defer cancel()
	items, err := h.svc.ListIncomingRelationships(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writePage(w, r, h.visibleEnds(r, items, "$sourceId"), defaultPageSize)
}

// visibleEnds keeps the relationships whose other end (the twin named by
// key) the caller may read, so that a readable twin does not reveal the ids
// of hidden ones. Without access control every item is kept.
func (h *twinHandlers) visibleEnds(r *http.Request, items []json.RawMessage, key string) []json.RawMessage {
	vis := visible(r)
	if vis == nil {
		return items
	}
	snap := h.svc.Graph().Snapshot()
	out := make([]json.RawMessage, 0, len(items))
	for _, it := range items {
		var ends map[string]json.RawMessage
		if json.Unmarshal(it, &ends) != nil {
			continue
		}
		var id string
		json.Unmarshal(ends[key], &id)
		if t, ok := snap.Twin(id); ok && vis(id, t.Model) {
			out = append(out, it)
		}
	}
	return out
}

func (h *twinHandlers) getRelationship(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := requestContext(r)
	defer cancel()
	body, etag, err := h.svc.GetRelationship(ctx, r.PathValue("id"), r.PathValue("rel"))
	if err != nil {
		return err
	}
	if len(h.visibleEnds(r, []json.RawMessage{body}, "$targetId")) == 0 {
		return engine.Errorf(engine.KindNotFound, "RelationshipNotFound", "there is no relationship %s on twin %s", r.PathValue("rel"), r.PathValue("id"))
	}
	writeEntity(w, http.StatusOK, body, etag)
	return nil
}

func (h *twinHandlers) putRelationship(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	out, etag, err := h.svc.PutRelationship(ctx, actor(r), r.PathValue("id"), r.PathValue("rel"), body, cond(r))
	if err != nil {
		return err
	}
	writeEntity(w, http.StatusOK, out, etag)
	return nil
}

func (h *twinHandlers) patchRelationship(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	etag, err := h.svc.PatchRelationship(ctx, actor(r), r.PathValue("id"), r.PathValue("rel"), body, cond(r))
	if err != nil {
		return err
	}
	noContent(w, etag)
	return nil
}

func (h *twinHandlers) deleteRelationship(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := requestContext(r)
	defer cancel()
	if err := h.svc.DeleteRelationship(ctx, actor(r), r.PathValue("id"), r.PathValue("rel"), cond(r)); err != nil {
		return err
	}
	noContent(w, "")
	return nil
}

func (h *twinHandlers) sendTelemetry(w http.ResponseWriter, r *http.Request) error {
	msgID := r.Header.Get("Message-Id")
	if msgID == "" {
		return engine.Errorf(engine.KindInvalid, "InvalidArgument", "the Message-Id header is required")
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	err = h.svc.SendTelemetry(ctx, actor(r), r.PathValue("id"), r.PathValue("component"), msgID,
		r.Header.Get("Telemetry-Source-Time"), body)
	if err != nil {
		return err
	}
	noContent(w, "")
	return nil
}
