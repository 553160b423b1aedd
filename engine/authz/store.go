package authz

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// Stream holds every grant event.
const Stream = "authz"

// Event types on Stream. Payloads are JSON at SchemaVersion.
const (
	// TypeGrantCreated carries a Grant; a grant with an existing id
	// replaces it.
	TypeGrantCreated = "grant.created"
	// TypeGrantRevoked carries {"id": ...}.
	TypeGrantRevoked = "grant.revoked"
)

// SchemaVersion is the payload version of the grant events.
const SchemaVersion uint16 = 1

// ModelChecker answers model inheritance questions; *dtdl.Registry is one.
type ModelChecker interface {
	IsOfModel(model, base string) bool
}

// Options configure a Store. The zero value is valid.
type Options struct {
	// Models returns the current model registry, for model scopes. Default
	// nil: a model scope covers twins of exactly its model.
	Models func() ModelChecker
	// Outgoing, when set, reads a twin's outgoing relationships from the
	// twin graph, which must be a projection applied before the Store in
	// the same engine (so it already holds each batch the Store applies).
	// The Store then keeps no copy of the graph's edges, and Replay reads
	// only the grant stream. Default nil: the Store follows relationship
	// events and keeps its own edge map.
	Outgoing func(src string, yield func(name, target string) bool)
}

// Store is the projection of grants and of the graph edges that subtree
// scopes follow, and the authorization decision over them. Apply is called
// from one goroutine in log order; every other method is safe for
// concurrent use.
type Store struct {
	opts Options
	mu   struct {
		sync.RWMutex
		grants      map[string]*Grant
		byPrincipal map[string][]*Grant
		subtrees    []string                       // ids of subtree grants, sorted
		reach       map[string]map[string]struct{} // subtree grant id -> twins reached
		out         map[string]map[string]edge     // source twin -> relationship id -> edge
		pos         uint64
	}
}

type edge struct{ name, target string }

var _ engine.Projection = (*Store)(nil)

// New returns an empty store.
func New(opts Options) *Store {
	s := &Store{opts: opts}
	s.mu.grants = map[string]*Grant{}
	s.mu.byPrincipal = map[string][]*Grant{}
	s.mu.reach = map[string]map[string]struct{}{}
	s.mu.out = map[string]map[string]edge{}
	return s
}

// Position returns the position of the last event applied.
func (s *Store) Position() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.pos
}

// Replay applies the log's events from the store's position up to and
// including position to. A node whose twin graph starts from a snapshot
// calls it before the engine starts, since the engine then replays only
// the log after the snapshot.
func (s *Store) Replay(ctx context.Context, log eventlog.Log, to uint64) error {
	if s.opts.Outgoing != nil {
		return s.replayGrants(ctx, log, to)
	}
	for from := s.Position() + 1; from <= to; {
		evs, err := log.Read(ctx, from, 4096)
		if err != nil {
			return fmt.Errorf("replay grants: %w", err)
		}
		if len(evs) == 0 {
			return nil
		}
		if last := evs[len(evs)-1].Position; last > to {
			n := sort.Search(len(evs), func(i int) bool { return evs[i].Position > to })
			evs = evs[:n]
		}
		if err := s.Apply(evs); err != nil {
			return err
		}
		from = evs[len(evs)-1].Position + 1
	}
	return nil
}

// replayGrants reads only the grant stream up to to, then computes the
// subtree scopes from the twin graph, which is already at to.
func (s *Store) replayGrants(ctx context.Context, log eventlog.Log, to uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for from := uint64(1); ; {
		evs, err := log.ReadStream(ctx, Stream, from, 1024)
		if err != nil {
			return fmt.Errorf("replay grants: %w", err)
		}
		n := sort.Search(len(evs), func(i int) bool { return evs[i].Position > to })
		for i := range evs[:n] {
			if err := s.applyLocked(&evs[i]); err != nil {
				return err
			}
		}
		if n < len(evs) || len(evs) == 0 {
			break
		}
		from = evs[len(evs)-1].Position + 1
	}
	for _, id := range s.mu.subtrees {
		s.recomputeLocked(s.mu.grants[id])
	}
	s.mu.pos = max(s.mu.pos, to)
	return nil
}

// Apply implements engine.Projection.
func (s *Store) Apply(batch []event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range batch {
		e := &batch[i]
		if e.Position <= s.mu.pos {
			continue // already applied by Replay
		}
		if err := s.applyLocked(e); err != nil {
			return err
		}
		s.mu.pos = e.Position
	}
	return nil
}

func (s *Store) applyLocked(e *event.Event) error {
	switch e.Type {
	case TypeGrantCreated:
		var g Grant
		if err := decode(e, &g); err != nil {
			return err
		}
		g.CreatedBy, g.Created = e.Actor, e.Time
		s.removeGrantLocked(g.ID)
		s.mu.grants[g.ID] = &g
		s.mu.byPrincipal[g.Principal] = append(s.mu.byPrincipal[g.Principal], &g)
		if g.Scope.Kind == ScopeSubtree {
			i, _ := slices.BinarySearch(s.mu.subtrees, g.ID)
			s.mu.subtrees = slices.Insert(s.mu.subtrees, i, g.ID)
			s.recomputeLocked(&g)
		}
	case TypeGrantRevoked:
		var ref struct {
			ID string `json:"id"`
		}
		if err := decode(e, &ref); err != nil {
			return err
		}
		s.removeGrantLocked(ref.ID)
	case twingraph.TypeRelationshipCreated, twingraph.TypeRelationshipReplaced:
		if len(s.mu.subtrees) == 0 && s.opts.Outgoing != nil {
			return nil
		}
		var r twingraph.RelationshipState
		if err := twingraph.Decode(e, &r); err != nil {
			return err
		}
		ed := edge{name: r.Name, target: r.Target}
		if s.opts.Outgoing != nil {
			if e.Type == twingraph.TypeRelationshipReplaced {
				// The replaced edge is gone from the graph already:
				// recompute every subtree it may have been part of.
				s.recomputeReachingLocked(r.Source)
				return nil
			}
			s.edgeAddedLocked(r.Source, ed)
			return nil
		}
		m := s.mu.out[r.Source]
		if m == nil {
			m = map[string]edge{}
			s.mu.out[r.Source] = m
		}
		old, had := m[r.ID]
		m[r.ID] = ed
		if had && old != ed {
			s.edgeRemovedLocked(r.Source, old)
		}
		s.edgeAddedLocked(r.Source, ed)
	case twingraph.TypeRelationshipDeleted:
		if len(s.mu.subtrees) == 0 && s.opts.Outgoing != nil {
			return nil
		}
		var r twingraph.RelationshipRef
		if err := twingraph.Decode(e, &r); err != nil {
			return err
		}
		if s.opts.Outgoing != nil {
			s.recomputeReachingLocked(r.Source)
			return nil
		}
		m := s.mu.out[r.Source]
		old, had := m[r.ID]
		if !had {
			return nil
		}
		delete(m, r.ID)
		if len(m) == 0 {
			delete(s.mu.out, r.Source)
		}
		s.edgeRemovedLocked(r.Source, old)
	case twingraph.TypeTwinDeleted:
		if s.opts.Outgoing != nil {
			return nil // a twin is deleted only once its relationships are
		}
		var r twingraph.TwinRef
		if err := twingraph.Decode(e, &r); err != nil {
			return err
		}
		delete(s.mu.out, r.ID)
	}
	return nil
}

func decode(e *event.Event, v any) error {
	if e.SchemaVersion != SchemaVersion {
		return fmt.Errorf("%s at %d: unknown schema version %d", e.Type, e.Position, e.SchemaVersion)
	}
	if err := json.Unmarshal(e.Payload, v); err != nil {
		return fmt.Errorf("decode %s at %d: %w", e.Type, e.Position, err)
	}
	return nil
}

func (s *Store) removeGrantLocked(id string) {
	g, ok := s.mu.grants[id]
	if !ok {
		return
	}
	delete(s.mu.grants, id)
	list := slices.DeleteFunc(slices.Clone(s.mu.byPrincipal[g.Principal]), func(x *Grant) bool { return x == g })
	if len(list) == 0 {
		delete(s.mu.byPrincipal, g.Principal)
	} else {
		s.mu.byPrincipal[g.Principal] = list
	}
	if g.Scope.Kind == ScopeSubtree {
		if i, ok := slices.BinarySearch(s.mu.subtrees, id); ok {
			s.mu.subtrees = slices.Delete(s.mu.subtrees, i, i+1)
		}
		delete(s.mu.reach, id)
	}
}

func follows(g *Grant, name string) bool {
	return len(g.Scope.Relationships) == 0 || slices.Contains(g.Scope.Relationships, name)
}

// edgeAddedLocked extends every subtree that reaches src through the new
// edge.
func (s *Store) edgeAddedLocked(src string, ed edge) {
	for _, id := range s.mu.subtrees {
		g := s.mu.grants[id]
		set := s.mu.reach[id]
		if _, in := set[src]; !in || !follows(g, ed.name) {
			continue
		}
		if _, in := set[ed.target]; in {
			continue
		}
		s.walkLocked(g, set, ed.target)
	}
}

// edgeRemovedLocked recomputes every subtree the removed edge was part of:
// its target may still be reachable another way.
func (s *Store) edgeRemovedLocked(src string, ed edge) {
	for _, id := range s.mu.subtrees {
		g := s.mu.grants[id]
		set := s.mu.reach[id]
		_, inSrc := set[src]
		_, inDst := set[ed.target]
		if inSrc && inDst && follows(g, ed.name) {
			s.recomputeLocked(g)
		}
	}
}

// recomputeReachingLocked recomputes every subtree that reaches src.
func (s *Store) recomputeReachingLocked(src string) {
	for _, id := range s.mu.subtrees {
		if _, in := s.mu.reach[id][src]; in {
			s.recomputeLocked(s.mu.grants[id])
		}
	}
}

func (s *Store) recomputeLocked(g *Grant) {
	set := map[string]struct{}{}
	s.mu.reach[g.ID] = set
	s.walkLocked(g, set, g.Scope.Root)
}

// walkLocked adds from and every twin reachable from it through g's
// relationships to set.
func (s *Store) walkLocked(g *Grant, set map[string]struct{}, from string) {
	set[from] = struct{}{}
	stack := []string{from}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		s.outgoing(id, func(name, target string) bool {
			if _, in := set[target]; in || !follows(g, name) {
				return true
			}
			set[target] = struct{}{}
			stack = append(stack, target)
			return true
		})
	}
}

// outgoing calls fn for each outgoing relationship of id: from the twin
// graph when the Store reads it, else from its own edge map.
func (s *Store) outgoing(id string, fn func(name, target string) bool) {
	if s.opts.Outgoing != nil {
		s.opts.Outgoing(id, fn)
		return
	}
	for _, ed := range s.mu.out[id] {
		if !fn(ed.name, ed.target) {
			return
		}
	}
}

// Grants returns every grant, ordered by id.
func (s *Store) Grants() []Grant {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Grant, 0, len(s.mu.grants))
	for _, g := range s.mu.grants {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Grant) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}

// GrantsOf returns the grants given to principal, ordered by id.
func (s *Store) GrantsOf(principal string) []Grant {
	s.mu.RLock()
	defer s.mu.RUnlock()
	gs := s.mu.byPrincipal[principal]
	out := make([]Grant, 0, len(gs))
	for _, g := range gs {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Grant) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Grant returns the grant with id.
func (s *Store) Grant(id string) (Grant, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g, ok := s.mu.grants[id]
	if !ok {
		return Grant{}, false
	}
	return *g, true
}

// Reach returns the twins a subtree grant currently covers, sorted; nil
// for other grants.
func (s *Store) Reach(id string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	set := s.mu.reach[id]
	if set == nil {
		return nil
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// NewGrantID returns a random grant id.
func NewGrantID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// GrantEvent returns the grant.created event recording g (a new id when
// g.ID is ""), for callers that append it with other events.
func GrantEvent(actor string, g Grant) (event.Event, Grant, error) {
	if g.ID == "" {
		g.ID = NewGrantID()
	}
	g.CreatedBy, g.Created = "", 0
	if err := g.Validate(); err != nil {
		return event.Event{}, g, engine.Errorf(engine.KindInvalid, "InvalidArgument", "%s", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	}
	b, err := json.Marshal(g)
	if err != nil {
		return event.Event{}, g, err
	}
	return event.Event{Stream: Stream, Type: TypeGrantCreated, Actor: actor, SchemaVersion: SchemaVersion, Payload: b}, g, nil
}

// RevokeEvent returns the grant.revoked event of grant id.
func RevokeEvent(actor, id string) event.Event {
	b, _ := json.Marshal(map[string]string{"id": id})
	return event.Event{Stream: Stream, Type: TypeGrantRevoked, Actor: actor, SchemaVersion: SchemaVersion, Payload: b}
}

// PutGrant appends a grant.created event for g (a new id when g.ID is "")
// through eng and returns the grant as stored.
func (s *Store) PutGrant(ctx context.Context, eng *engine.Engine, actor string, g Grant) (Grant, error) {
	ev, g, err := GrantEvent(actor, g)
	if err != nil {
		return Grant{}, err
	}
	if _, err := eng.Execute(ctx, engine.CommandFunc(func(context.Context) (engine.Decision, error) {
		return engine.Decision{Events: []event.Event{ev}}, nil
	})); err != nil {
		return Grant{}, err
	}
	out, _ := s.Grant(g.ID)
	return out, nil
}

// RevokeGrant appends a grant.revoked event for id through eng.
func (s *Store) RevokeGrant(ctx context.Context, eng *engine.Engine, actor, id string) error {
	_, err := eng.Execute(ctx, engine.CommandFunc(func(context.Context) (engine.Decision, error) {
		if _, ok := s.Grant(id); !ok {
			return engine.Decision{}, engine.Errorf(engine.KindNotFound, "GrantNotFound", "there is no grant %q", id)
		}
		return engine.Decision{Events: []event.Event{RevokeEvent(actor, id)}}, nil
	}))
	return err
}

// GraphOutgoing returns an Options.Outgoing that reads the relationships of
// g's current snapshot.
func GraphOutgoing(g *twingraph.Graph) func(src string, yield func(name, target string) bool) {
	return func(src string, yield func(name, target string) bool) {
		for r := range g.Snapshot().Outgoing(src, "") {
			if !yield(r.Name, r.Target) {
				return
			}
		}
	}
}
