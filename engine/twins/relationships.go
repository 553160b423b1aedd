package twins

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/schemas/dtdl"
)

// GetRelationship returns the relationship's ADT JSON and ETag.
func (s *Service) GetRelationship(ctx context.Context, src, relID string) ([]byte, string, error) {
	snap := s.g.Snapshot()
	r, ok := snap.Relationship(src, relID)
	if !ok {
		if _, ok := snap.Twin(src); !ok {
			return nil, "", twinNotFound(src)
		}
		return nil, "", relNotFound(src, relID)
	}
	return r.AppendJSON(make([]byte, 0, 256)), r.ETag(), nil
}

// PutRelationship creates or replaces relationship relID of twin src
// (ADT DigitalTwins_AddRelationship). The body carries $targetId,
// $relationshipName and the relationship's properties. The name must be a
// relationship of the source twin's model (inherited ones included), the
// target must exist and be of the declared target model, and a twin cannot
// relate to itself.
func (s *Service) PutRelationship(ctx context.Context, actor, src, relID string, body []byte, cond Cond) ([]byte, string, error) {
	if err := s.checkID("relationship", relID); err != nil {
		return nil, "", err
	}
	if len(body) > s.opts.MaxTwinBytes {
		return nil, "", tooLarge("relationship", len(body), s.opts.MaxTwinBytes)
	}
	v, err := twingraph.DecodeJSON(body)
	if err != nil {
		return nil, "", invalid("InvalidArgument", "the relationship body is not valid JSON: %v", err)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, "", invalid("InvalidArgument", "the relationship body must be a JSON object")
	}
	target, _ := doc["$targetId"].(string)
	name, _ := doc["$relationshipName"].(string)
	if target == "" {
		return nil, "", validationFailed("$targetId is required")
	}
	if name == "" {
		return nil, "", validationFailed("$relationshipName is required")
	}
	if target == src {
		return nil, "", invalid("OperationNotAllowed", "a relationship cannot connect twin %s to itself", src)
	}
	props := map[string]any{}
	for k, v := range doc {
		switch k {
		case "$targetId", "$relationshipName", "$relationshipId", "$sourceId", "$etag":
			continue
		}
		if strings.HasPrefix(k, "$") {
			return nil, "", validationFailed("%s is not a writable relationship member", k)
		}
		props[k] = v
	}
	var rel *twingraph.Relationship
	res, err := s.execute(ctx, func(ctx context.Context) (engine.Decision, error) {
		snap := s.g.Snapshot()
		st, ok := snap.Twin(src)
		if !ok {
			return engine.Decision{}, twinNotFound(src)
		}
		old, exists := snap.Relationship(src, relID)
		var etagPos uint64
		if exists {
			etagPos = old.ETagPos
		}
		if err := checkCond(cond, exists, etagPos); err != nil {
			return engine.Decision{}, err
		}
		tt, ok := snap.Twin(target)
		if !ok {
			return engine.Decision{}, engine.Errorf(engine.KindNotFound, "TargetTwinNotFound", "the target twin %s does not exist", target)
		}
		enc, err := s.relationshipProps(snap, st, tt, name, props)
		if err != nil {
			return engine.Decision{}, err
		}
		rel = &twingraph.Relationship{Source: src, ID: relID, Name: name, Target: target, Props: propsString(enc)}
		typ := twingraph.TypeRelationshipCreated
		if exists {
			typ = twingraph.TypeRelationshipReplaced
		}
		evs := make([]event.Event, 0, 3)
		ev, err := twingraph.NewEvent(twingraph.TwinStream(src), typ, actor, &twingraph.RelationshipState{
			Source: src, ID: relID, Name: name, Target: target, Properties: enc})
		if err != nil {
			return engine.Decision{}, err
		}
		evs = append(evs, ev)
		ref := &twingraph.RelationshipRef{Source: src, ID: relID, Name: name, Target: target}
		if ev, err = twingraph.NewEvent(twingraph.TwinStream(target), twingraph.TypeRelationshipLinked, actor, ref); err != nil {
			return engine.Decision{}, err
		}
		evs = append(evs, ev)
		if exists && old.Target != target {
			oref := &twingraph.RelationshipRef{Source: src, ID: relID, Name: old.Name, Target: old.Target}
			if ev, err = twingraph.NewEvent(twingraph.TwinStream(old.Target), twingraph.TypeRelationshipUnlinked, actor, oref); err != nil {
				return engine.Decision{}, err
			}
			evs = append(evs, ev)
		}
		return engine.Decision{Events: evs, Expect: []eventlog.Expect{
			{Stream: twingraph.TwinStream(src), Version: st.Version},
			{Stream: twingraph.TwinStream(target), Version: tt.Version},
		}}, nil
	})
	if err != nil {
		return nil, "", err
	}
	rel.ETagPos = res.Appended.First
	return rel.AppendJSON(make([]byte, 0, 256)), rel.ETag(), nil
}

// relationshipDef finds relationship name on the source twin's model.
func relationshipDef(snap *twingraph.Snapshot, src *twingraph.Twin, name string) (*dtdl.Interface, *dtdl.Content, error) {
	itf, ok := snap.Models().Get(src.Model)
	if !ok {
		return nil, nil, validationFailed("the model %s of twin %s was deleted; its relationships cannot be changed", src.Model, src.ID)
	}
	rd, ok := itf.Relationship(name)
	if !ok {
		return nil, nil, invalid("InvalidRelationship", "relationship %s is not defined in model %s of twin %s", name, src.Model, src.ID)
	}
	return itf, rd, nil
}

// relationshipProps validates a relationship against the source's model and
// returns its canonical properties.
func (s *Service) relationshipProps(snap *twingraph.Snapshot, src, tgt *twingraph.Twin, name string, props map[string]any) ([]byte, error) {
	itf, rd, err := relationshipDef(snap, src, name)
	if err != nil {
		return nil, err
	}
	if tgt != nil && rd.Target != "" && !snap.Models().IsOfModel(tgt.Model, rd.Target) {
		return nil, invalid("InvalidRelationship", "relationship %s of model %s must target a %s; twin %s is a %s",
			name, src.Model, rd.Target, tgt.ID, tgt.Model)
	}
	for k, v := range props {
		if err := s.checkLimits(k, v); err != nil {
			return nil, err
		}
		if v == nil {
			return nil, validationFailed("relationship property %s: null is not a valid value", k)
		}
		if err := itf.ValidateRelationshipProperty(name, k, v); err != nil {
			return nil, validationFailed("%v", err)
		}
	}
	enc, err := twingraph.Canonical(props)
	if err != nil {
		return nil, validationFailed("%v", err)
	}
	return enc, nil
}

// PatchRelationship applies a JSON Patch to a relationship's properties
// and returns the new ETag.
func (s *Service) PatchRelationship(ctx context.Context, actor, src, relID string, patch []byte, cond Cond) (string, error) {
	if len(patch) > s.opts.MaxTwinBytes {
		return "", tooLarge("patch", len(patch), s.opts.MaxTwinBytes)
	}
	ops, err := ParsePatch(patch)
	if err != nil {
		return "", patchInvalid(err)
	}
	for _, op := range ops {
		for _, p := range [][]string{op.Path, op.From} {
			if p == nil {
				continue
			}
			if len(p) == 0 {
				return "", patchInvalid(errPatchRoot)
			}
			if strings.HasPrefix(p[0], "$") {
				return "", patchInvalid(errPatchMember(p[0]))
			}
		}
	}
	var etagPos uint64
	res, err := s.execute(ctx, func(ctx context.Context) (engine.Decision, error) {
		snap := s.g.Snapshot()
		st, ok := snap.Twin(src)
		if !ok {
			return engine.Decision{}, twinNotFound(src)
		}
		r, ok := snap.Relationship(src, relID)
		if !ok {
			return engine.Decision{}, relNotFound(src, relID)
		}
		if err := checkCond(cond, true, r.ETagPos); err != nil {
			return engine.Decision{}, err
		}
		etagPos = r.ETagPos
		doc, err := r.PropsMap()
		if err != nil {
			return engine.Decision{}, err
		}
		out, err := Apply(doc, ops)
		if err != nil {
			return engine.Decision{}, patchInvalid(err)
		}
		tt, _ := snap.Twin(r.Target)
		enc, err := s.relationshipProps(snap, st, tt, r.Name, out.(map[string]any))
		if err != nil {
			return engine.Decision{}, err
		}
		if propsString(enc) == r.Props {
			return engine.Decision{}, nil
		}
		raw, err := MarshalOps(ops)
		if err != nil {
			return engine.Decision{}, patchInvalid(err)
		}
		ev, err := twingraph.NewEvent(twingraph.TwinStream(src), twingraph.TypeRelationshipPatched, actor,
			&twingraph.RelationshipPatched{Source: src, ID: relID, Patch: raw, Properties: enc})
		if err != nil {
			return engine.Decision{}, err
		}
		return engine.Decision{Events: []event.Event{ev},
			Expect: []eventlog.Expect{{Stream: twingraph.TwinStream(src), Version: st.Version}}}, nil
	})
	if err != nil {
		return "", err
	}
	if res.Appended.First != 0 {
		etagPos = res.Appended.First
	}
	return twingraph.ETag(etagPos), nil
}

// DeleteRelationship deletes relationship relID of twin src.
func (s *Service) DeleteRelationship(ctx context.Context, actor, src, relID string, cond Cond) error {
	_, err := s.execute(ctx, func(ctx context.Context) (engine.Decision, error) {
		snap := s.g.Snapshot()
		st, ok := snap.Twin(src)
		if !ok {
			return engine.Decision{}, twinNotFound(src)
		}
		r, ok := snap.Relationship(src, relID)
		if !ok {
			return engine.Decision{}, relNotFound(src, relID)
		}
		if err := checkCond(cond, true, r.ETagPos); err != nil {
			return engine.Decision{}, err
		}
		ref := &twingraph.RelationshipRef{Source: src, ID: relID, Name: r.Name, Target: r.Target}
		ev1, err := twingraph.NewEvent(twingraph.TwinStream(src), twingraph.TypeRelationshipDeleted, actor, ref)
		if err != nil {
			return engine.Decision{}, err
		}
		ev2, err := twingraph.NewEvent(twingraph.TwinStream(r.Target), twingraph.TypeRelationshipUnlinked, actor, ref)
		if err != nil {
			return engine.Decision{}, err
		}
		return engine.Decision{Events: []event.Event{ev1, ev2},
			Expect: []eventlog.Expect{{Stream: twingraph.TwinStream(src), Version: st.Version}}}, nil
	})
	return err
}

// ListRelationships returns the outgoing relationships of src, only those
// named name unless name is "", in id order.
func (s *Service) ListRelationships(ctx context.Context, src, name string) ([]json.RawMessage, error) {
	snap := s.g.Snapshot()
	if _, ok := snap.Twin(src); !ok {
		return nil, twinNotFound(src)
	}
	out := []json.RawMessage{}
	for r := range snap.Outgoing(src, name) {
		out = append(out, r.AppendJSON(nil))
	}
	return out, nil
}

// ListIncomingRelationships returns the relationships targeting target in
// ADT's IncomingRelationship shape.
func (s *Service) ListIncomingRelationships(ctx context.Context, target string) ([]json.RawMessage, error) {
	snap := s.g.Snapshot()
	if _, ok := snap.Twin(target); !ok {
		return nil, twinNotFound(target)
	}
	out := []json.RawMessage{}
	for r := range snap.Incoming(target) {
		out = append(out, r.AppendIncomingJSON(nil))
	}
	return out, nil
}

// propsString is the stored form of canonical relationship properties: ""
// for none.
func propsString(enc []byte) string {
	if string(enc) == "{}" {
		return ""
	}
	return string(enc)
}
