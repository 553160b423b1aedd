package timetravel

import (
	"context"
	"strings"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/query"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// fixed is a graphquery.Source that always answers one historical view.
type fixed struct{ s *twingraph.Snapshot }

func (f fixed) Snapshot() *twingraph.Snapshot { return f.s }

// HasAsOf reports whether the query text has an AS OF clause. It is cheap
// for the texts that do not: it parses only those with the words AS OF.
func HasAsOf(text string) bool {
	if !hasWords(text, "AS", "OF") {
		return false
	}
	st, err := query.Parse(text)
	return err == nil && st.AsOf != nil
}

// hasWords reports whether a, whitespace and b occur in s as words, case
// aside.
func hasWords(s, a, b string) bool {
	for i := 0; i+len(a) <= len(s); i++ {
		if !strings.EqualFold(s[i:i+len(a)], a) || (i > 0 && isWordByte(s[i-1])) {
			continue
		}
		j := i + len(a)
		k := j
		for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r') {
			k++
		}
		if k == j || k+len(b) > len(s) || !strings.EqualFold(s[k:k+len(b)], b) {
			continue
		}
		if k+len(b) == len(s) || !isWordByte(s[k+len(b)]) {
			return true
		}
	}
	return false
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// TokenAsOf reports whether a continuation token belongs to an AS OF
// query.
func TokenAsOf(token string) bool {
	tok, err := query.DecodeToken(token)
	return err == nil && HasAsOf(tok.Query)
}

// Query runs one page of a query over the graph as of a past point: the
// query's AS OF clause, or at when it is not zero (then the query must not
// have a clause naming another point; the clause is added to the text, so
// the continuation token carries it). A continuation reads the view at
// the token's position, rebuilt if it was evicted: history does not
// change, so the pages stay consistent.
func (t *Traveler) Query(ctx context.Context, req graphquery.Request, at At, opts graphquery.Options) (*query.Result, error) {
	if req.ContinuationToken != "" {
		tok, err := query.DecodeToken(req.ContinuationToken)
		if err != nil {
			return nil, err
		}
		snap, err := t.AsOf(ctx, At{Position: tok.Position})
		if err != nil {
			return nil, err
		}
		return graphquery.New(fixed{snap}, opts).Run(ctx, req)
	}
	st, err := query.Parse(req.Query)
	if err != nil {
		return nil, err
	}
	if st.AsOf != nil {
		clause := At{Time: st.AsOf.Time, Position: st.AsOf.Position}
		if !at.IsZero() && (clause.Position != at.Position || !clause.Time.Equal(at.Time)) {
			return nil, engine.Errorf(engine.KindInvalid, query.CodeQueryError, "the query says AS OF %s but asOf is %s; give one", clause, at)
		}
		at = clause
	} else if !at.IsZero() {
		req.Query = strings.TrimRight(strings.TrimSpace(req.Query), "; \t\r\n") + " AS OF " + quoteAt(at)
	} else {
		return nil, engine.Errorf(engine.KindInvalid, query.CodeQueryError, "the query has no AS OF clause and no asOf was given")
	}
	// The query runs while the view is being cached.
	snap, cached, err := t.asOf(ctx, at)
	if err != nil {
		return nil, err
	}
	defer cached()
	return graphquery.New(fixed{snap}, opts).Run(ctx, req)
}

func quoteAt(a At) string {
	if a.Position != 0 {
		return a.String()
	}
	return "'" + a.String() + "'"
}
