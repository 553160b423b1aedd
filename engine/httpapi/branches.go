package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/processors/simulate"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// Reads of a simulation branch: ?branch=<id> on GET /digitaltwins/{id},
// its components, relationships and incoming relationships, and on POST
// /query, answers from the branch's graph instead of the main one, with
// the same access control (the twin's model is looked up in the branch).

var errNoSimulations = engine.Errorf(engine.KindInvalid, "FeatureNotEnabled", "simulations (branch) are not enabled on this node")

// branchOf returns the branch r names with ?branch=, nil when it names
// none.
func (s *Server) branchOf(r *http.Request) (*simulate.Branch, error) {
	if !queryHas(r, "branch") {
		return nil, nil // the common case, without parsing the query
	}
	id := r.URL.Query().Get("branch")
	if id == "" {
		return nil, engine.Errorf(engine.KindInvalid, "InvalidArgument", "branch must name a simulation")
	}
	if s.sims == nil {
		return nil, errNoSimulations
	}
	return s.sims.lookup(id)
}

// readGraph returns the graph a twin read answers from, for the
// authorizer: the branch's for a GET naming one, else the main graph.
func (s *Server) readGraph(r *http.Request, main *twingraph.Snapshot) *twingraph.Snapshot {
	if r.Method != http.MethodGet {
		return main
	}
	if b, err := s.branchOf(r); err == nil && b != nil {
		return b.Graph().Snapshot()
	}
	return main
}

// readOr serves a twin read with ?branch= from the branch, with ?asOf=
// from the past, and any other with next.
func (s *Server) readOr(next func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	asOf := s.asOfOr(next)
	return func(w http.ResponseWriter, r *http.Request) error {
		b, err := s.branchOf(r)
		if err != nil {
			return err
		}
		if b == nil {
			return asOf(w, r)
		}
		if queryHas(r, "asOf") {
			return engine.Errorf(engine.KindInvalid, "InvalidArgument", "give branch or asOf, not both")
		}
		return writeSnapshotRead(w, r, b.Graph().Snapshot(), "in simulation "+b.ID())
	}
}

// mainOnly refuses ?branch= on a route that writes: branches are fed
// through /simulations, and a write must not land in the main graph by
// mistake.
func mainOnly(next func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if queryHas(r, "branch") {
			return engine.Errorf(engine.KindInvalid, "InvalidArgument", "branch is for reads; a simulation is fed through POST /simulations")
		}
		return next(w, r)
	}
}

// writeSnapshotRead answers a twin read (the twin, a component, a
// relationship, the relationships or incoming relationships) from snap;
// where ("as of ...", "in simulation ...") completes not-found messages.
// Relationships whose other end the caller may not read are left out, as
// in reads of the live graph.
func writeSnapshotRead(w http.ResponseWriter, r *http.Request, snap *twingraph.Snapshot, where string) error {
	id := r.PathValue("id")
	t, ok := snap.Twin(id)
	if !ok {
		return engine.Errorf(engine.KindNotFound, "DigitalTwinNotFound", "There is no digital twin instance that exists with the ID %s %s.", id, where)
	}
	vis := visible(r)
	shown := func(id string) bool {
		if vis == nil {
			return true
		}
		t, ok := snap.Twin(id)
		return ok && vis(id, t.Model)
	}
	w.Header().Set("twinlog-position", strconv.FormatUint(snap.Position(), 10))
	switch r.Pattern {
	case "GET /digitaltwins/{id}":
		writeEntity(w, http.StatusOK, t.AppendJSON(make([]byte, 0, t.JSONSize())), t.ETag())
	case "GET /digitaltwins/{id}/components/{component}":
		name := r.PathValue("component")
		body, ok := t.AppendComponentJSON(nil, name)
		if !ok {
			return engine.Errorf(engine.KindNotFound, "ComponentNotFound", "The component %s does not exist on twin %s %s.", name, id, where)
		}
		writeEntity(w, http.StatusOK, body, t.ETag())
	case "GET /digitaltwins/{id}/relationships/{rel}":
		rel, ok := t.Outgoing(r.PathValue("rel"))
		if !ok || !shown(rel.Target) {
			return engine.Errorf(engine.KindNotFound, "RelationshipNotFound", "There is no relationship %s on twin %s %s.", r.PathValue("rel"), id, where)
		}
		writeEntity(w, http.StatusOK, rel.AppendJSON(nil), rel.ETag())
	case "GET /digitaltwins/{id}/relationships":
		items := []json.RawMessage{}
		for rel := range snap.Outgoing(id, r.URL.Query().Get("relationshipName")) {
			if shown(rel.Target) {
				items = append(items, rel.AppendJSON(nil))
			}
		}
		return writePage(w, r, items, defaultPageSize)
	case "GET /digitaltwins/{id}/incomingrelationships":
		items := []json.RawMessage{}
		for rel := range snap.Incoming(id) {
			if shown(rel.Source) {
				items = append(items, rel.AppendIncomingJSON(nil))
			}
		}
		return writePage(w, r, items, defaultPageSize)
	default:
		return engine.Errorf(engine.KindInvalid, "InvalidArgument", "this read is not supported %s", where)
	}
	return nil
}

// lookup returns branch id or the API's not-found error.
func (h *simulationAPI) lookup(id string) (*simulate.Branch, error) {
	b, err := h.sim.Get(id)
	if errors.Is(err, simulate.ErrNotFound) {
		return nil, engine.Errorf(engine.KindNotFound, "SimulationNotFound", "There is no simulation with the ID %s.", id)
	}
	return b, err
}

// diff serves GET /simulations/{id}/diff[?against=<id>]: the twins,
// properties and relationships that differ between the main graph as of
// now (or branch against) and the branch, as differences from the former
// to the latter; twins the caller may not read are left out.
func (h *simulationAPI) diff(w http.ResponseWriter, r *http.Request) error {
	b, err := h.lookup(r.PathValue("id"))
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	var base *twingraph.Snapshot
	against := "main"
	if q := r.URL.Query(); q.Has("against") {
		if against = q.Get("against"); against == "" {
			return engine.Errorf(engine.KindInvalid, "InvalidArgument", "against must name a simulation")
		}
		o, err := h.lookup(against)
		if err != nil {
			return err
		}
		base = o.Graph().Snapshot()
	} else if base, err = h.sim.Main(ctx); err != nil {
		return err
	}
	snap := b.Graph().Snapshot()
	size, err := pageSize(r, 1000)
	if err != nil {
		return err
	}
	out := struct {
		Against string                 `json:"against"`
		From    uint64                 `json:"againstPosition"`
		To      uint64                 `json:"position"`
		Value   []twingraph.Difference `json:"value"`
		More    bool                   `json:"more"`
	}{Against: against, From: base.Position(), To: snap.Position(), Value: []twingraph.Difference{}}
	twingraph.Diff(base, snap, twingraph.DiffOptions{Twin: visible(r)}, func(d twingraph.Difference) bool {
		if len(out.Value) == size {
			out.More = true
			return false
		}
		out.Value = append(out.Value, d)
		return ctx.Err() == nil
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
