package dtdl

import (
	"fmt"
	"slices"
	"sort"
)

// Registry is an immutable set of resolved interfaces. Add, Remove and
// Decommission return a new Registry and leave the receiver unchanged, so
// versions can be kept (for time travel) and read concurrently without
// locks. The zero value is not usable; start from NewRegistry.
//
// Registry is pure: it does no I/O and starts no goroutines.
type Registry struct {
	models         map[string]*Interface
	descendants    map[string][]string // id -> sorted ids of interfaces that extend it transitively
	decommissioned map[string]bool
	opts           Options
}

// NewRegistry returns an empty registry that parses with opts.
func NewRegistry(opts Options) *Registry {
	return &Registry{models: map[string]*Interface{}, descendants: map[string][]string{}, decommissioned: map[string]bool{}, opts: opts}
}

// Len returns the number of interfaces in the registry.
func (r *Registry) Len() int { return len(r.models) }

// Get returns the interface with the given DTMI (compared exactly,
// case-sensitively). It does not allocate.
func (r *Registry) Get(id string) (*Interface, bool) {
	itf, ok := r.models[id]
	return itf, ok
}

// IDs returns the DTMIs of every interface, sorted.
func (r *Registry) IDs() []string {
	ids := make([]string, 0, len(r.models))
	for id := range r.models {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// IsDecommissioned reports whether the interface was decommissioned.
func (r *Registry) IsDecommissioned(id string) bool { return r.decommissioned[id] }

// IsOfModel reports whether the interface modelID is ofID or extends it
// transitively (the IS_OF_MODEL test of the query language). It does not
// allocate.
func (r *Registry) IsOfModel(modelID, ofID string) bool {
	itf, ok := r.models[modelID]
	if !ok {
		return false
	}
	return itf.IsA(ofID)
}

// Descendants returns the DTMIs of every interface that extends id
// transitively, sorted, not including id. The slice must not be modified.
// It does not allocate.
func (r *Registry) Descendants(id string) []string { return r.descendants[id] }

// Add parses and resolves a batch against the registry's interfaces and
// returns a new Registry holding them too, with the interfaces the batch
// defined. It is atomic: on any problem the error is a *ValidationError
// and nothing is added. An interface already in the registry cannot be
// defined again (duplicateDefinition).
func (r *Registry) Add(docs []Document) (*Registry, []*Interface, error) {
	itfs, err := Resolve(docs, r.models, r.opts)
	if err != nil {
		return r, nil, err
	}
	var diags []Diagnostic
	for _, itf := range itfs {
		if _, dup := r.models[itf.ID]; dup {
			diags = append(diags, Diagnostic{Code: "duplicateDefinition", ElementID: itf.ID, Property: "@id",
				Message: fmt.Sprintf("%s is already defined", itf.ID), File: itf.File})
		}
	}
	if len(diags) > 0 {
		return r, nil, &ValidationError{Diagnostics: diags}
	}
	next := r.clone()
	for _, itf := range itfs {
		next.models[itf.ID] = itf
		for _, a := range itf.ancestors {
			d := slices.Clone(next.descendants[a])
			i, _ := slices.BinarySearch(d, itf.ID)
			next.descendants[a] = slices.Insert(d, i, itf.ID)
		}
	}
	return next, itfs, nil
}

// Remove returns a registry without the interface id. It is refused with
// ErrReferenced when another interface extends it, uses it as a component
// schema or names it as a relationship target, and with ErrNotFound when
// it is unknown.
func (r *Registry) Remove(id string) (*Registry, error) {
	if _, ok := r.models[id]; !ok {
		return r, fmt.Errorf("remove %s: %w", id, ErrNotFound)
	}
	if by := r.ReferencedBy(id); len(by) > 0 {
		return r, fmt.Errorf("remove %s: used by %s: %w", id, by[0], ErrReferenced)
	}
	next := r.clone()
	itf := next.models[id]
	delete(next.models, id)
	delete(next.decommissioned, id)
	delete(next.descendants, id)
	// The removed interface is no longer a descendant of its ancestors.
	// Slices are shared with r, so replace rather than edit them.
	for _, a := range itf.Ancestors() {
		d := next.descendants[a]
		if i, ok := slices.BinarySearch(d, id); ok {
			next.descendants[a] = slices.Delete(slices.Clone(d), i, i+1)
		}
	}
	return next, nil
}

// ReferencedBy returns the DTMIs of interfaces that extend id directly, use
// it as a component schema or name it as a relationship target, sorted.
func (r *Registry) ReferencedBy(id string) []string {
	var out []string
	for mid, itf := range r.models {
		if mid == id {
			continue
		}
		if referencesModel(itf, id) {
			out = append(out, mid)
		}
	}
	sort.Strings(out)
	return out
}

func referencesModel(itf *Interface, id string) bool {
	if slices.Contains(itf.Extends, id) {
		return true
	}
	for _, c := range itf.Contents {
		if c.ComponentSchemaID == id || c.Target == id {
			return true
		}
	}
	return false
}

// Decommission returns a registry in which id is marked decommissioned: it
// stays resolvable for existing twins, but new twins should not use it.
func (r *Registry) Decommission(id string) (*Registry, error) {
	if _, ok := r.models[id]; !ok {
		return r, fmt.Errorf("decommission %s: %w", id, ErrNotFound)
	}
	if r.decommissioned[id] {
		return r, nil
	}
	next := r.clone()
	next.decommissioned[id] = true
	return next, nil
}

// clone copies the registry's maps; interfaces and descendant slices are
// shared (they are never modified in place).
func (r *Registry) clone() *Registry {
	next := &Registry{
		models:         make(map[string]*Interface, len(r.models)+8),
		descendants:    make(map[string][]string, len(r.descendants)+8),
		decommissioned: make(map[string]bool, len(r.decommissioned)),
		opts:           r.opts,
	}
	for k, v := range r.models {
		next.models[k] = v
	}
	for k, v := range r.descendants {
		next.descendants[k] = v
	}
	for k, v := range r.decommissioned {
		next.decommissioned[k] = v
	}
	return next
}
