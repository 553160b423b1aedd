// Package query is twinlog's query language: Azure Digital Twins' SQL
// dialect, complete, plus what ADT's users keep asking for (queries without
// a $dtId anchor, any number of JOINs, ORDER BY, GROUP BY with aggregates,
// DISTINCT, arithmetic).
//
// A query flows through three pure stages:
//
//	text ──Parse──► *Statement ──plan (reads the model catalog)──► *Plan ──execute over a Graph──► rows
//
// Parse turns text into a syntax tree and reports syntax errors with the
// line, column and what was expected. The planner resolves names, checks
// function arguments and picks how to reach the rows: $dtId equality or IN
// becomes id lookups, IS_OF_MODEL becomes a scan of the model index over the
// transitive extends closure, JOIN and MATCH patterns expand from their most
// selective twin through the source and target indexes, and TOP and COUNT
// stop or count without materializing rows. EXPLAIN <query> returns the
// plan. The executor walks a Graph, the small read interface this package
// owns (the twin graph projection satisfies it through an adapter in
// projections/graphquery), under a time and memory budget. A Graph may
// offer more through optional interfaces found by type assertion: a Seeker
// for the twins an expansion reaches in id order, a NumberScanner that
// applies a model scan's number condition itself, its models version for
// plan reuse.
//
// A Cache keeps plans by the query's text with its string literals taken
// out, so that the queries an application repeats with other ids are
// parsed and planned once; each run binds its own literals.
//
// Results have ADT's shapes: SELECT * yields twin (or relationship) JSON,
// projections yield objects keyed by alias or property name, COUNT() yields
// {"COUNT": n}. Execution is deterministic for a Graph, so a page sequence
// that reads one snapshot neither skips nor repeats rows; the continuation
// token (see Token) carries the query text, the snapshot position and the
// offset.
//
// Every error a user can cause is an *engine.Error of kind KindInvalid and
// code "SqlQueryError"; an exhausted budget is KindTimeout, "QueryTimeout".
package query
