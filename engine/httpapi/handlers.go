package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/authz"
	"github.com/twinlog/twinlog/processors/handlers"
)

// RegisterHandlers serves WebAssembly handler deployment from m:
//
//	POST   /handlers                deploy (JSON {"manifest":{...},"module":"<base64>"},
//	                                or multipart with parts "manifest" and "module")
//	GET    /handlers                list
//	GET    /handlers/{name}         status, failures, dead letters, latencies
//	DELETE /handlers/{name}         delete
//	POST   /handlers/{name}/disable disable
func (s *Server) RegisterHandlers(m *handlers.Manager) {
	h := &handlerAPI{m: m}
	if s.auth != nil {
		h.grants = s.auth.Grants
	}
	s.Handle("POST /handlers", h.deploy)
	s.Handle("GET /handlers", h.list)
	s.Handle("GET /handlers/{name}", h.get)
	s.Handle("DELETE /handlers/{name}", h.delete)
	s.Handle("POST /handlers/{name}/disable", h.disable)
}

type handlerAPI struct {
	m      *handlers.Manager
	grants *authz.Store // nil without access control
}

// DeployRequest is the JSON body of POST /handlers.
type DeployRequest struct {
	Manifest handlers.Manifest `json:"manifest"`
	// Module is the WebAssembly module, base64.
	Module string `json:"module"`
}

func badDeploy(format string, args ...any) error {
	return engine.Errorf(engine.KindInvalid, "InvalidArgument", format, args...)
}

func (h *handlerAPI) deploy(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := requestContext(r)
	defer cancel()
	var man handlers.Manifest
	var module []byte
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "multipart/form-data":
		mr, err := r.MultipartReader()
		if err != nil {
			return badDeploy("read multipart body: %v", err)
		}
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return badDeploy("read multipart body: %v", err)
			}
			b, err := io.ReadAll(part)
			if err != nil {
				return badDeploy("read part %s: %v", part.FormName(), err)
			}
			switch part.FormName() {
			case "manifest":
				if err := json.Unmarshal(b, &man); err != nil {
					return badDeploy("the manifest is not valid JSON: %v", err)
				}
			case "module":
				module = b
			}
		}
	default:
		body, err := readBody(r)
		if err != nil {
			return err
		}
		var req DeployRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return badDeploy("the body is not a valid deploy request: %v", err)
		}
		man = req.Manifest
		if module, err = base64.StdEncoding.DecodeString(req.Module); err != nil {
			return badDeploy("module is not valid base64: %v", err)
		}
	}
	if len(module) == 0 {
		return badDeploy("no module given")
	}
	if s := h.grants; s != nil {
		// Deploying gives the handler its manifest's grants: the deployer
		// must be allowed to give each of them.
		p := principal(r)
		for i, a := range man.Grants {
			g := authz.Grant{Principal: authz.HandlerPrincipal(man.Name), Role: a.Role, Scope: a.Scope}
			if !s.CanGrant(p, &g) {
				return engine.Errorf(engine.KindForbidden, "Forbidden", "grant %d of the manifest (%s): the caller may not give a role it does not hold on the whole instance", i, a.Role)
			}
		}
	}
	st, err := h.m.Deploy(ctx, actor(r), man, module)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, st)
	return nil
}

func (h *handlerAPI) list(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"value": h.m.List(r.Context())})
	return nil
}

func (h *handlerAPI) get(w http.ResponseWriter, r *http.Request) error {
	st, err := h.m.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (h *handlerAPI) delete(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := requestContext(r)
	defer cancel()
	if err := h.m.Delete(ctx, actor(r), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handlerAPI) disable(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := requestContext(r)
	defer cancel()
	if err := h.m.Disable(ctx, actor(r), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
