package handlers

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/authz"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/schemas/dtdl"
	"github.com/twinlog/twinlog/wasm-handlers/host"
)

// Manifest describes a handler deployment.
type Manifest struct {
	// Name identifies the handler: letters, digits, '-', '_' and '.', at
	// most 64.
	Name string `json:"name"`
	// Version is a free-form label of this version ("" is shown as the
	// deployment's position).
	Version string `json:"version,omitempty"`
	// Triggers select the events the handler sees; an event matching any
	// trigger is delivered.
	Triggers []Trigger `json:"triggers"`
	// Limits bound the handler's invocations.
	Limits Limits `json:"limits,omitzero"`
	// Config is a JSON object the handler reads with handler.Config.
	Config json.RawMessage `json:"config,omitempty"`
	// Grants are what the handler may do: it acts as the principal
	// "handler:<name>", which holds these grants and no other (unless an
	// owner adds some through /grants). It sees only events of twins it
	// may read, reads only those twins, and writes and sends telemetry
	// only where its grants allow. Where access control is on, a manifest
	// needs at least one grant, and its deployer must be allowed to give
	// each of them (authz.Store.CanGrant).
	Grants []Access `json:"grants,omitempty"`
}

// Access is one grant of a manifest: a role on a scope, as in /grants.
type Access struct {
	Role  authz.Role  `json:"role"`
	Scope authz.Scope `json:"scope"`
}

// grant returns the authz grant of a manifest's i-th access. Its id is
// fixed by the handler's name and i, so a new version replaces the grants
// of the last.
func (m *Manifest) grant(i int) authz.Grant {
	a := m.Grants[i]
	return authz.Grant{ID: grantID(m.Name, i), Principal: authz.HandlerPrincipal(m.Name), Role: a.Role, Scope: a.Scope}
}

func grantID(name string, i int) string { return fmt.Sprintf("handler.%s.%d", name, i) }

// Trigger selects events.
type Trigger struct {
	// Events are event types ("telemetry", "twin.created",
	// "twin.replaced", "twin.patched", "twin.deleted",
	// "relationship.created", ".replaced", ".patched", ".deleted") or
	// groups: "property" (twin created, replaced or patched), "lifecycle"
	// (twin created or deleted), "relationship" (every relationship event).
	Events []string `json:"events"`
	// Models keep only events of twins of these models or models extending
	// them. Empty: any model.
	Models []string `json:"models,omitempty"`
	// Properties keep only twin writes that set or remove one of these root
	// properties. Empty: any.
	Properties []string `json:"properties,omitempty"`
	// Relationships keep only relationship events of these names. Empty:
	// any.
	Relationships []string `json:"relationships,omitempty"`
}

// Limits are a manifest's sandbox limits; zero values mean host defaults.
type Limits struct {
	// TimeoutMs is the CPU-time budget of one invocation. Default 1000.
	TimeoutMs int `json:"timeoutMs,omitempty"`
	// MemoryPages bounds the guest's memory in 64 KiB pages. Default 1024.
	MemoryPages uint32 `json:"memoryPages,omitempty"`
	// MaxOutputs bounds the writes of one invocation. Default 10,000.
	MaxOutputs int `json:"maxOutputs,omitempty"`
	// MaxOutputBytes bounds their bytes. Default 4 MiB.
	MaxOutputBytes int `json:"maxOutputBytes,omitempty"`
	// MaxBatch bounds the events of one invocation. Default 1024.
	MaxBatch int `json:"maxBatch,omitempty"`
}

func (l Limits) host() host.Limits {
	return host.Limits{Timeout: time.Duration(l.TimeoutMs) * time.Millisecond, MemoryPages: l.MemoryPages,
		MaxOutputs: l.MaxOutputs, MaxOutputBytes: l.MaxOutputBytes, MaxBatch: l.MaxBatch}.WithDefaults()
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

var eventGroups = map[string][]string{
	"property":     {twingraph.TypeTwinCreated, twingraph.TypeTwinReplaced, twingraph.TypeTwinPatched},
	"lifecycle":    {twingraph.TypeTwinCreated, twingraph.TypeTwinDeleted},
	"relationship": {twingraph.TypeRelationshipCreated, twingraph.TypeRelationshipReplaced, twingraph.TypeRelationshipPatched, twingraph.TypeRelationshipDeleted},
}

var eventTypes = []string{twingraph.TypeTelemetry, twingraph.TypeTwinCreated, twingraph.TypeTwinReplaced,
	twingraph.TypeTwinPatched, twingraph.TypeTwinDeleted, twingraph.TypeRelationshipCreated,
	twingraph.TypeRelationshipReplaced, twingraph.TypeRelationshipPatched, twingraph.TypeRelationshipDeleted}

func invalidManifest(format string, args ...any) *engine.Error {
	return engine.Errorf(engine.KindInvalid, "InvalidManifest", format, args...)
}

// Validate checks m and expands event groups in place.
func (m *Manifest) Validate() error {
	if !nameRE.MatchString(m.Name) {
		return invalidManifest("handler name %q must be 1-64 letters, digits, '.', '-' or '_'", m.Name)
	}
	if len(m.Version) > 64 {
		return invalidManifest("version is longer than 64 bytes")
	}
	if len(m.Triggers) == 0 {
		return invalidManifest("handler %s has no trigger", m.Name)
	}
	for i := range m.Triggers {
		t := &m.Triggers[i]
		if len(t.Events) == 0 {
			return invalidManifest("trigger %d names no event type", i)
		}
		var types []string
		for _, e := range t.Events {
			if g, ok := eventGroups[e]; ok {
				types = append(types, g...)
			} else if slices.Contains(eventTypes, e) {
				types = append(types, e)
			} else {
				return invalidManifest("trigger %d: unknown event type %q", i, e)
			}
		}
		slices.Sort(types)
		t.Events = slices.Compact(types)
	}
	l := m.Limits.host()
	l.Timeout = time.Duration(m.Limits.TimeoutMs) * time.Millisecond
	if err := l.Validate(); err != nil || m.Limits.TimeoutMs < 0 {
		return invalidManifest("limits: %v", err)
	}
	if len(m.Grants) > 64 {
		return invalidManifest("handler %s asks for %d grants; at most 64", m.Name, len(m.Grants))
	}
	for i := range m.Grants {
		g := m.grant(i)
		if err := g.Validate(); err != nil {
			return invalidManifest("grant %d: %s", i, strings.TrimPrefix(err.Error(), authz.ErrInvalid.Error()+": "))
		}
	}
	if len(m.Config) > 0 {
		var obj map[string]any
		if err := json.Unmarshal(m.Config, &obj); err != nil {
			return invalidManifest("config must be a JSON object: %v", err)
		}
	}
	return nil
}

// match reports whether a trigger selects an event of type typ about a
// twin of model, which changed props, of relationship rel.
func (t *Trigger) match(reg *dtdl.Registry, typ, model string, changed []string, rel string) bool {
	if !slices.Contains(t.Events, typ) {
		return false
	}
	if len(t.Models) > 0 {
		ok := false
		for _, m := range t.Models {
			if model == m || (model != "" && reg.IsOfModel(model, m)) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(t.Properties) > 0 && typ != twingraph.TypeTelemetry && typ != twingraph.TypeTwinDeleted && rel == "" {
		ok := false
		for _, p := range changed {
			if slices.Contains(t.Properties, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(t.Relationships) > 0 && rel != "" && !slices.Contains(t.Relationships, rel) {
		return false
	}
	return true
}

// selects reports whether a trigger of m names event type typ (after
// Validate).
func (m *Manifest) selects(typ string) bool {
	for i := range m.Triggers {
		if slices.Contains(m.Triggers[i].Events, typ) {
			return true
		}
	}
	return false
}

func (m *Manifest) String() string { return fmt.Sprintf("%s@%s", m.Name, m.Version) }
