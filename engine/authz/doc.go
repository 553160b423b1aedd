// Package authz decides who may do what to which twins.
//
// A Grant gives a Role to a principal (a user subject, a group claim or an
// API key) on a Scope: the whole instance, the twins of a model (and of the
// models extending it), a subtree of the graph (the twins reachable from a
// root twin through named relationships), or explicit twin ids.
//
// Grants are events in the log, on their own stream (Stream). The Store is a
// projection: it applies grant events and, to keep subtree scopes correct as
// the graph changes, the twin graph's relationship events, in log order and
// deterministically. Each subtree grant keeps the set of twins it reaches, so
// a check is a map lookup, never a traversal per request; the set is updated
// when a relationship is added (extended from the new edge) or removed
// (recomputed from the root).
//
// The decision itself (Store.Allowed, Store.Visible) is pure: a principal,
// an action, a twin and its model in, a yes or no out. The HTTP layer
// (engine/httpapi) only extracts the principal (engine/authn) and asks.
package authz
