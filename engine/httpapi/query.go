package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/query"
)

// RegisterQuery serves ADT's Query_QueryTwins, POST /query, with runner:
// body {"query": "...", "continuationToken": "..."} (the query is ignored
// when a token is given), header max-items-per-page; the answer is
// {"value": [...], "continuationToken": "..." or null} with the page's cost
// in the query-charge header. A query with an AS OF clause or an "asOf"
// field (RFC 3339 time or log position) reads the past (RegisterHistory);
// POST /query?branch=<id> queries a simulation's branch
// (RegisterSimulations).
func (s *Server) RegisterQuery(runner *graphquery.Runner) {
	s.Handle("POST /query", func(w http.ResponseWriter, r *http.Request) error {
		body, err := readBody(r)
		if err != nil {
			return err
		}
		var req struct {
			Query             string `json:"query"`
			ContinuationToken string `json:"continuationToken"`
			AsOf              string `json:"asOf"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return engine.Errorf(engine.KindInvalid, "BadRequest", "the body must be a JSON object {\"query\": \"SELECT ...\"}: %v", err)
		}
		if req.ContinuationToken == "null" {
			req.ContinuationToken = "" // ADT's samples spell the last page's token "null"
		}
		b, err := s.branchOf(r)
		if err != nil {
			return err
		}
		run := runner
		switch {
		case b != nil && s.history.wants(req.Query, req.ContinuationToken, req.AsOf):
			return engine.Errorf(engine.KindInvalid, "InvalidArgument", "a query of a branch reads its present: give branch or AS OF (asOf), not both")
		case b != nil:
			run = b.Queries()
		case s.history.wants(req.Query, req.ContinuationToken, req.AsOf):
			return s.history.query(w, r, req.Query, req.ContinuationToken, req.AsOf)
		}
		size, err := pageSize(r, query.DefaultPageSize)
		if err != nil {
			return err
		}
		ctx, cancel := requestContext(r)
		defer cancel()
		res, err := run.Run(ctx, graphquery.Request{Query: req.Query, ContinuationToken: req.ContinuationToken, PageSize: size, Visible: visible(r)})
		if err != nil {
			return err
		}
		w.Header().Set("query-charge", strconv.FormatFloat(res.Charge, 'f', -1, 64))
		buf := answers.Get().(*[]byte)
		answer := appendList((*buf)[:0], res.Rows, "continuationToken", res.ContinuationToken, true)
		writeRaw(w, http.StatusOK, answer)
		res.Release()
		if cap(answer) <= maxPooledAnswer {
			*buf = answer[:0]
			answers.Put(buf)
		}
		return nil
	})
}

// answers recycles the buffers POST /query answers and twins read by GET
// are assembled in: an answer is copied into one and written, and the
// ResponseWriter does not keep it. Buffers grown past maxPooledAnswer are
// left to the collector.
var answers = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledAnswer = 1 << 20
