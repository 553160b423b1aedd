package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/processors/simulate"
	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/query"
	"github.com/twinlog/twinlog/projections/timetravel"
)

// RegisterSimulations serves what-if branches of the graph from sim
// (owners only, as every route the authorizer does not name):
//
//	POST   /simulations                        fork and feed a branch: 201 {id, position}
//	GET    /simulations                        every branch's status
//	GET    /simulations/{id}                   status: position, events fed, done
//	POST   /simulations/{id}/query             a query on the branch's graph
//	GET    /simulations/{id}/digitaltwins/{twin} a twin of the branch
//	DELETE /simulations/{id}                   stop and forget the branch
//	GET    /simulations/{id}/diff[?against=<id>] what differs from the main
//	                                           graph as of now (or another branch):
//	                                           {against, value: [{kind, what, twinId,
//	                                           component, name, a, b}], more}
//
// Reads of a branch are also served by the twin and query routes with
// ?branch=<id>, under the access control of those routes.
//
// The body of POST /simulations is {"at": time or position (default: now),
// "window": {"from": ..., "to": ...}, "speed": 0 or N, "events": [{"twinId",
// "component", "patch" | "telemetry"}], "deployedHandlers": true, "handlers":
// [{"name", "version"} | {"manifest", "module": base64}]}: handlers run in
// the branch (the main log's deployed ones, another version of one, or a
// module uploaded with the request), their outputs written to it only.
func (s *Server) RegisterSimulations(sim *simulate.Simulator) {
	h := &simulationAPI{sim: sim}
	s.sims = h
	s.Handle("POST /simulations", h.create)
	s.Handle("GET /simulations", h.list)
	s.Handle("GET /simulations/{id}", h.get)
	s.Handle("DELETE /simulations/{id}", h.delete)
	s.Handle("POST /simulations/{id}/query", h.query)
	s.Handle("GET /simulations/{id}/digitaltwins/{twin}", h.twin)
	s.Handle("GET /simulations/{id}/diff", h.diff)
}

type simulationAPI struct {
	sim *simulate.Simulator
}

func (h *simulationAPI) branch(r *http.Request) (*simulate.Branch, error) {
	return h.lookup(r.PathValue("id"))
}

func (h *simulationAPI) create(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var in struct {
		At     string `json:"at"`
		Window *struct {
			From string `json:"from"`
			To   string `json:"to"`
		} `json:"window"`
		Speed            float64            `json:"speed"`
		Events           []simulate.Event   `json:"events"`
		DeployedHandlers bool               `json:"deployedHandlers"`
		Handlers         []simulate.Handler `json:"handlers"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return engine.Errorf(engine.KindInvalid, "BadRequest", "the body must be a JSON object {\"at\": ..., \"window\": ..., \"speed\": ..., \"events\": [...]}: %v", err)
	}
	req := simulate.Request{Speed: in.Speed, Events: in.Events, Actor: actor(r), DeployedHandlers: in.DeployedHandlers, Handlers: in.Handlers}
	if in.At != "" {
		if req.At, err = timetravel.ParseAt("at", in.At); err != nil {
			return err
		}
	}
	if in.Window != nil {
		req.Window = &simulate.Window{}
		if in.Window.From != "" {
			if req.Window.From, err = timetravel.ParseAt("window.from", in.Window.From); err != nil {
				return err
			}
		}
		if in.Window.To != "" {
			if req.Window.To, err = timetravel.ParseAt("window.to", in.Window.To); err != nil {
				return err
			}
		}
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	b, err := h.sim.Create(ctx, req)
	if err != nil {
		return err
	}
	st := b.Status()
	writeJSON(w, http.StatusCreated, struct {
		ID       string `json:"id"`
		Position uint64 `json:"position"`
	}{st.ID, st.Position})
	return nil
}

func (h *simulationAPI) list(w http.ResponseWriter, r *http.Request) error {
	out := []simulate.Status{}
	for _, b := range h.sim.List() {
		out = append(out, b.Status())
	}
	writeJSON(w, http.StatusOK, struct {
		Value []simulate.Status `json:"value"`
	}{out})
	return nil
}

func (h *simulationAPI) get(w http.ResponseWriter, r *http.Request) error {
	b, err := h.branch(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b.Status())
	return nil
}

func (h *simulationAPI) delete(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.branch(r); err != nil {
		return err
	}
	if err := h.sim.Delete(r.PathValue("id")); err != nil && !errors.Is(err, simulate.ErrNotFound) {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *simulationAPI) query(w http.ResponseWriter, r *http.Request) error {
	b, err := h.branch(r)
	if err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var req struct {
		Query             string `json:"query"`
		ContinuationToken string `json:"continuationToken"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return engine.Errorf(engine.KindInvalid, "BadRequest", "the body must be a JSON object {\"query\": \"SELECT ...\"}: %v", err)
	}
	size, err := pageSize(r, query.DefaultPageSize)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	res, err := b.Queries().Run(ctx, graphquery.Request{Query: req.Query, ContinuationToken: req.ContinuationToken, PageSize: size, Visible: visible(r)})
	if err != nil {
		return err
	}
	w.Header().Set("query-charge", strconv.FormatFloat(res.Charge, 'f', -1, 64))
	w.Header().Set("twinlog-position", strconv.FormatUint(res.Position, 10))
	writeRaw(w, http.StatusOK, appendList(nil, res.Rows, "continuationToken", res.ContinuationToken, true))
	return nil
}

func (h *simulationAPI) twin(w http.ResponseWriter, r *http.Request) error {
	b, err := h.branch(r)
	if err != nil {
		return err
	}
	snap := b.Graph().Snapshot()
	id := r.PathValue("twin")
	t, ok := snap.Twin(id)
	if !ok {
		return engine.Errorf(engine.KindNotFound, "DigitalTwinNotFound", "There is no digital twin instance that exists with the ID %s in simulation %s.", id, b.ID())
	}
	w.Header().Set("twinlog-position", strconv.FormatUint(snap.Position(), 10))
	writeEntity(w, http.StatusOK, t.AppendJSON(make([]byte, 0, t.JSONSize())), t.ETag())
	return nil
}
