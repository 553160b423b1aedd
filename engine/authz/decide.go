package authz

import "slices"

// grantsLocked returns the grants that apply to p.
func (s *Store) grantsLocked(p *Principal, dst []*Grant) []*Grant {
	dst = append(dst, s.mu.byPrincipal[p.Subject]...)
	for _, g := range p.Groups {
		dst = append(dst, s.mu.byPrincipal["group:"+g]...)
	}
	return dst
}

func (s *Store) models() ModelChecker {
	if s.opts.Models == nil {
		return nil
	}
	return s.opts.Models()
}

// covers reports whether g's scope holds twin id of model (model "" when
// the twin is not known: model scopes then do not hold it).
func (s *Store) coversLocked(g *Grant, id, model string, mc ModelChecker) bool {
	switch g.Scope.Kind {
	case ScopeInstance:
		return true
	case ScopeTwins:
		return slices.Contains(g.Scope.Twins, id)
	case ScopeSubtree:
		_, ok := s.mu.reach[g.ID][id]
		return ok
	case ScopeModel:
		if model == "" {
			return false
		}
		if model == g.Scope.Model {
			return true
		}
		return mc != nil && mc.IsOfModel(model, g.Scope.Model)
	}
	return false
}

// Allowed reports whether p may do a on twin id, whose model is model (""
// when it does not exist or is not known). For actions that are not about
// one twin (Action.InstanceOnly), id and model are ignored and a grant on
// the instance is needed. ActReadModels is allowed by any grant whose role
// includes it, whatever its scope.
func (s *Store) Allowed(p *Principal, a Action, id, model string) bool {
	if p.Superuser || p.Role.Allows(a) {
		return true
	}
	var buf [8]*Grant
	s.mu.RLock()
	defer s.mu.RUnlock()
	gs := s.grantsLocked(p, buf[:0])
	var mc ModelChecker
	for _, g := range gs {
		if !g.Role.Allows(a) {
			continue
		}
		if a == ActReadModels || g.Scope.Kind == ScopeInstance {
			return true
		}
		if a.InstanceOnly() {
			continue
		}
		if g.Scope.Kind == ScopeModel && mc == nil {
			mc = s.models()
		}
		if s.coversLocked(g, id, model, mc) {
			return true
		}
	}
	return false
}

// Visible returns the predicate deciding which twins p may read, or nil
// when p may read every twin. The predicate sees the grants p held when
// Visible was called and the current subtree sets. It remembers its answers
// per model, so it is meant for one query: it is not safe for concurrent
// use.
func (s *Store) Visible(p *Principal) func(id, model string) bool {
	return s.VisibleWith(p, new(Visibility))
}

// Visibility holds the state of a Visible predicate, for a caller that
// runs one query at a time and keeps it between them (an HTTP/1.x
// connection): VisibleWith then allocates nothing.
type Visibility struct {
	v  visibility
	fn func(id, model string) bool // v.visible, made once
}

// VisibleWith is Visible keeping the predicate's state in vv, which it
// resets: a predicate it returned is valid until the next call with the
// same vv.
func (s *Store) VisibleWith(p *Principal, vv *Visibility) func(id, model string) bool {
	if p.Superuser || p.Role.Allows(ActRead) {
		return nil
	}
	v := &vv.v
	*v = visibility{s: s}
	v.models, v.subtrees = v.mbuf[:0], v.sbuf[:0]
	s.mu.RLock()
	for _, g := range s.grantsLocked(p, v.buf[:0]) {
		if !g.Role.Allows(ActRead) {
			continue
		}
		switch g.Scope.Kind {
		case ScopeInstance:
			s.mu.RUnlock()
			return nil
		case ScopeModel:
			v.models = append(v.models, g)
		case ScopeSubtree:
			v.subtrees = append(v.subtrees, g)
		case ScopeTwins:
			if v.twins == nil {
				v.twins = map[string]bool{}
			}
			for _, id := range g.Scope.Twins {
				v.twins[id] = true
			}
		}
	}
	s.mu.RUnlock()
	if len(v.models) > 0 {
		v.mc = s.models()
	}
	if vv.fn == nil {
		vv.fn = v.visible
	}
	return vv.fn
}

// visibility is the state of one Visible predicate: one allocation per
// query however many rows it sees, none with VisibleWith.
type visibility struct {
	s                *Store
	buf              [8]*Grant
	mbuf, sbuf       [2]*Grant // the first model and subtree grants
	models, subtrees []*Grant
	twins            map[string]bool
	mc               ModelChecker
	// seen remembers the answer of the model grants for the last few
	// models.
	seen [4]struct {
		model string
		ok    bool
	}
	nseen int
}

func (v *visibility) byModel(model string) bool {
	for i := range min(v.nseen, len(v.seen)) {
		if v.seen[i].model == model {
			return v.seen[i].ok
		}
	}
	ok := false
	for _, g := range v.models {
		if model == g.Scope.Model || v.mc != nil && v.mc.IsOfModel(model, g.Scope.Model) {
			ok = true
			break
		}
	}
	v.seen[v.nseen%len(v.seen)].model, v.seen[v.nseen%len(v.seen)].ok = model, ok
	v.nseen++
	return ok
}

func (v *visibility) visible(id, model string) bool {
	if len(v.models) > 0 && model != "" && v.byModel(model) {
		return true
	}
	if v.twins[id] {
		return true
	}
	if len(v.subtrees) == 0 {
		return false
	}
	s := v.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, g := range v.subtrees {
		if _, ok := s.mu.reach[g.ID][id]; ok {
			return true
		}
	}
	return false
}

// CanGrant reports whether p may give g's role to someone else: p is
// allowed to manage grants (ActAdmin), or holds every action of the role
// on the whole instance. A handler-admin deploying a handler whose
// manifest asks for writer on a building needs writer on the instance
// itself, so deploying never widens what its deployer may do.
func (s *Store) CanGrant(p *Principal, g *Grant) bool {
	if s.Allowed(p, ActAdmin, "", "") {
		return true
	}
	for _, a := range roleActions[g.Role] {
		// With no twin named, only a grant on the instance allows a.
		if !s.Allowed(p, a, "", "") {
			return false
		}
	}
	return true
}
