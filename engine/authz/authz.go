package authz

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Role is a named set of actions.
type Role string

// Roles.
const (
	// Owner may do everything on its scope; on the instance it also
	// manages grants and API keys and reads the audit log.
	Owner Role = "owner"
	// Writer reads and changes twins, relationships and components, sends
	// telemetry, and uploads models (the latter on the instance only).
	Writer Role = "writer"
	// Reader reads twins, relationships, components, their history, and
	// models.
	Reader Role = "reader"
	// TelemetrySender sends telemetry to twins, nothing else.
	TelemetrySender Role = "telemetry-sender"
	// HandlerAdmin deploys, lists and removes handlers.
	HandlerAdmin Role = "handler-admin"
	// RouteAdmin manages endpoints and event routes.
	RouteAdmin Role = "route-admin"
)

// Roles lists every role.
var Roles = []Role{Owner, Writer, Reader, TelemetrySender, HandlerAdmin, RouteAdmin}

// Action is one kind of request.
type Action uint8

// Actions.
const (
	ActRead        Action = iota // read a twin, its relationships, components, history
	ActWrite                     // create, change or delete a twin or its relationships
	ActTelemetry                 // send telemetry to a twin
	ActReadModels                // list and read models
	ActWriteModels               // upload, decommission, delete models
	ActHandlers                  // manage handlers
	ActRoutes                    // manage endpoints and event routes
	ActAdmin                     // manage grants and API keys, read the audit log
	numActions
)

var actionNames = [numActions]string{"read", "write", "telemetry", "read-models", "write-models", "handlers", "routes", "admin"}

func (a Action) String() string {
	if a < numActions {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", a)
}

// InstanceOnly reports whether a is not about one twin and so needs a grant
// on the instance scope (ActReadModels excepted: any reading grant allows it).
func (a Action) InstanceOnly() bool { return a >= ActWriteModels }

var roleActions = map[Role][]Action{
	Owner:           {ActRead, ActWrite, ActTelemetry, ActReadModels, ActWriteModels, ActHandlers, ActRoutes, ActAdmin},
	Writer:          {ActRead, ActWrite, ActTelemetry, ActReadModels, ActWriteModels},
	Reader:          {ActRead, ActReadModels},
	TelemetrySender: {ActTelemetry},
	HandlerAdmin:    {ActHandlers, ActReadModels},
	RouteAdmin:      {ActRoutes},
}

// Allows reports whether role r includes action a.
func (r Role) Allows(a Action) bool { return slices.Contains(roleActions[r], a) }

// ScopeKind says what a Scope covers.
type ScopeKind string

// Scope kinds.
const (
	ScopeInstance ScopeKind = "instance"
	ScopeModel    ScopeKind = "model"
	ScopeSubtree  ScopeKind = "subtree"
	ScopeTwins    ScopeKind = "twins"
)

// Scope is the set of twins a grant covers.
type Scope struct {
	Kind ScopeKind `json:"kind"`
	// Model is the model id of a model scope: its twins and those of every
	// model extending it.
	Model string `json:"model,omitempty"`
	// Root is the root twin of a subtree scope. Relationships are the
	// names followed from it (outgoing, transitively); none means every
	// relationship.
	Root          string   `json:"root,omitempty"`
	Relationships []string `json:"relationships,omitempty"`
	// Twins are the twin ids of a twins scope.
	Twins []string `json:"twins,omitempty"`
}

// Grant gives Role to Principal on Scope.
type Grant struct {
	ID string `json:"id"`
	// Principal is "user:<subject>", "group:<group claim>",
	// "apikey:<key id>", "handler:<handler name>" (the grants of a
	// handler's manifest) or "anonymous" (callers without credentials,
	// when anonymous access is enabled).
	Principal string `json:"principal"`
	Role      Role   `json:"role"`
	Scope     Scope  `json:"scope"`
	// CreatedBy and Created (Unix nanoseconds) are filled from the event.
	CreatedBy string `json:"createdBy,omitempty"`
	Created   int64  `json:"created,omitempty"`
}

// ErrInvalid is wrapped by Validate's errors.
var ErrInvalid = errors.New("authz: invalid grant")

// Validate reports a malformed grant.
func (g *Grant) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	kind, name, ok := strings.Cut(g.Principal, ":")
	if g.Principal != Anonymous && (!ok || name == "" || (kind != "user" && kind != "group" && kind != "apikey" && kind != "handler")) {
		return bad("principal %q must be user:<subject>, group:<name>, apikey:<id>, handler:<name> or anonymous", g.Principal)
	}
	if _, ok := roleActions[g.Role]; !ok {
		return bad("role %q is not one of owner, writer, reader, telemetry-sender, handler-admin, route-admin", g.Role)
	}
	s := &g.Scope
	switch s.Kind {
	case ScopeInstance:
	case ScopeModel:
		if s.Model == "" {
			return bad("a model scope needs a model")
		}
	case ScopeSubtree:
		if s.Root == "" {
			return bad("a subtree scope needs a root twin")
		}
	case ScopeTwins:
		if len(s.Twins) == 0 {
			return bad("a twins scope needs at least one twin id")
		}
	default:
		return bad("scope kind %q is not one of instance, model, subtree, twins", s.Kind)
	}
	return nil
}

// Anonymous is the principal of callers without credentials.
const Anonymous = "anonymous"

// HandlerPrincipal is the principal a WebAssembly handler acts as.
func HandlerPrincipal(name string) string { return "handler:" + name }

// Principal is an authenticated caller.
type Principal struct {
	// Subject names the caller: "user:<sub>", "apikey:<id>",
	// "handler:<name>", "admin" (the admin token), "anonymous". It is the
	// actor recorded in events.
	Subject string
	// Groups are the caller's group claims, without the "group:" prefix.
	Groups []string
	// Superuser is set for the admin token: it is allowed everything
	// without grants.
	Superuser bool
	// Role, when set, is held on the whole instance on top of the grants
	// (the role configured for anonymous callers).
	Role Role
}

// matches reports whether a grant to name applies to p.
func (p *Principal) matches(name string) bool {
	if name == p.Subject {
		return true
	}
	if g, ok := strings.CutPrefix(name, "group:"); ok {
		return slices.Contains(p.Groups, g)
	}
	return false
}
