package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/query"
	"github.com/twinlog/twinlog/projections/timetravel"
)

// RegisterHistory serves the past from tt:
//
//   - ?asOf=<RFC 3339 time or log position> on GET /digitaltwins/{id}, its
//     components, relationships and incoming relationships: the resource as
//     it was then (404 if it did not exist then);
//   - POST /query with an AS OF clause or an "asOf" field: the query over
//     the graph as it was then, models included;
//   - GET /digitaltwins/{id}/history?from=&to=: the twin's changes (time,
//     type, JSON Patch, actor, causing event), paged with
//     max-items-per-page and nextLink.
func (s *Server) RegisterHistory(tt *timetravel.Traveler, opts graphquery.Options) {
	s.history = &historyAPI{tt: tt, opts: opts}
	s.Handle("GET /digitaltwins/{id}/history", s.history.twinHistory)
}

type historyAPI struct {
	tt   *timetravel.Traveler
	opts graphquery.Options
}

var errNoHistory = engine.Errorf(engine.KindInvalid, "FeatureNotEnabled", "time travel (asOf, AS OF) is not enabled on this node")

// asOfOr serves a read with ?asOf= from the past, and any other with next.
func (s *Server) asOfOr(next func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if !queryHas(r, "asOf") {
			return next(w, r)
		}
		if s.history == nil {
			return errNoHistory
		}
		return s.history.read(w, r)
	}
}

func (h *historyAPI) read(w http.ResponseWriter, r *http.Request) error {
	at, err := timetravel.ParseAt("asOf", r.URL.Query().Get("asOf"))
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	snap, err := h.tt.AsOf(ctx, at)
	if err != nil {
		return err
	}
	return writeSnapshotRead(w, r, snap, "as of "+at.String())
}

// wants reports whether a POST /query request reads the past: an asOf
// field, an AS OF clause, or a continuation of such a query. It is safe on
// a nil receiver (no time travel), which still recognizes the field and
// the clause so that they fail rather than read the present.
func (h *historyAPI) wants(text, token, asOf string) bool {
	if asOf != "" {
		return true
	}
	if token != "" {
		return h != nil && timetravel.TokenAsOf(token)
	}
	return timetravel.HasAsOf(text)
}

func (h *historyAPI) query(w http.ResponseWriter, r *http.Request, text, token, asOf string) error {
	if h == nil {
		return errNoHistory
	}
	var at timetravel.At
	if asOf != "" && token == "" {
		var err error
		if at, err = timetravel.ParseAt("asOf", asOf); err != nil {
			return err
		}
	}
	size, err := pageSize(r, query.DefaultPageSize)
	if err != nil {
		return err
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	res, err := h.tt.Query(ctx, graphquery.Request{Query: text, ContinuationToken: token, PageSize: size, Visible: visible(r)}, at, h.opts)
	if err != nil {
		return err
	}
	out := struct {
		Value             []json.RawMessage `json:"value"`
		ContinuationToken *string           `json:"continuationToken"`
	}{Value: res.Rows}
	if out.Value == nil {
		out.Value = []json.RawMessage{}
	}
	if res.ContinuationToken != "" {
		out.ContinuationToken = &res.ContinuationToken
	}
	w.Header().Set("query-charge", strconv.FormatFloat(res.Charge, 'f', -1, 64))
	w.Header().Set("twinlog-position", strconv.FormatUint(res.Position, 10))
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *historyAPI) twinHistory(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	req := timetravel.HistoryRequest{Twin: r.PathValue("id")}
	var err error
	if v := q.Get("from"); v != "" {
		if req.From, err = timetravel.ParseAt("from", v); err != nil {
			return err
		}
	}
	if v := q.Get("to"); v != "" {
		if req.To, err = timetravel.ParseAt("to", v); err != nil {
			return err
		}
	}
	if tok := q.Get("continuationToken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(b) < 3 || string(b[:2]) != "h:" {
			return engine.Errorf(engine.KindInvalid, "InvalidArgument", "the continuation token is not valid")
		}
		if req.After, err = strconv.ParseUint(string(b[2:]), 10, 64); err != nil {
			return engine.Errorf(engine.KindInvalid, "InvalidArgument", "the continuation token is not valid")
		}
	}
	if req.Max, err = pageSize(r, defaultPageSize); err != nil {
		return err
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	changes, next, err := h.tt.History(ctx, req)
	if err != nil {
		return err
	}
	body := struct {
		Value    []timetravel.Change `json:"value"`
		NextLink string              `json:"nextLink,omitempty"`
	}{Value: changes}
	if body.Value == nil {
		body.Value = []timetravel.Change{}
	}
	if next != 0 {
		q.Set("continuationToken", base64.RawURLEncoding.EncodeToString([]byte("h:"+strconv.FormatUint(next, 10))))
		body.NextLink = absoluteURL(r, q)
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}
