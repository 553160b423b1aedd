package twins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/schemas/dtdl"
)

// ModelData is ADT's DigitalTwinsModelData.
type ModelData struct {
	ID             string            `json:"id"`
	Description    map[string]string `json:"description"`
	DisplayName    map[string]string `json:"displayName"`
	Decommissioned bool              `json:"decommissioned"`
	UploadTime     string            `json:"uploadTime"`
	// Model is the DTDL definition, when asked for.
	Model json.RawMessage `json:"model,omitempty"`
}

func modelData(rec *twingraph.ModelRecord, itf *dtdl.Interface, withDef bool) ModelData {
	md := ModelData{ID: rec.ID, Description: map[string]string{}, DisplayName: map[string]string{},
		Decommissioned: rec.Decommissioned, UploadTime: twingraph.FormatTime(rec.Uploaded)}
	if itf != nil {
		for k, v := range itf.Description {
			md.Description[k] = v
		}
		for k, v := range itf.DisplayName {
			md.DisplayName[k] = v
		}
	}
	if withDef {
		md.Model = rec.Definition
	}
	return md
}

// AddModels uploads a batch of DTDL interfaces atomically. Models may
// reference models already uploaded. A model already present, or twice in
// the batch, fails the batch with ModelAlreadyExists; parse and resolution
// problems with DTDLParserError, one detail per diagnostic.
func (s *Service) AddModels(ctx context.Context, actor string, docs []json.RawMessage) ([]ModelData, error) {
	if len(docs) == 0 {
		return nil, invalid("InvalidArgument", "the request must contain at least one model")
	}
	if len(docs) > s.opts.MaxModelsPerCall {
		return nil, invalid("LimitExceeded", "%d models in one request exceed the limit of %d", len(docs), s.opts.MaxModelsPerCall)
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		id, err := twingraph.TopLevelID(d)
		if err != nil {
			return nil, &engine.Error{Kind: engine.KindInvalid, Code: "DTDLParserError",
				Message: fmt.Sprintf("model %d: %v", i, err)}
		}
		if slices.Contains(ids[:i], id) {
			return nil, engine.Errorf(engine.KindConflict, "ModelAlreadyExists", "model %s appears twice in the request", id)
		}
		ids[i] = id
	}
	var (
		itfs []*dtdl.Interface
		defs = make([]json.RawMessage, len(docs))
	)
	for i, d := range docs {
		defs[i] = append(json.RawMessage(nil), d...)
	}
	res, err := s.execute(ctx, func(ctx context.Context) (engine.Decision, error) {
		snap := s.g.Snapshot()
		reg := snap.Models()
		for _, id := range ids {
			if _, ok := reg.Get(id); ok {
				return engine.Decision{}, engine.Errorf(engine.KindConflict, "ModelAlreadyExists", "model %s already exists", id)
			}
		}
		var err error
		_, itfs, err = reg.Add(twingraph.ModelDocuments(defs))
		if err != nil {
			return engine.Decision{}, parserError(err)
		}
		ev, err := twingraph.NewEvent(twingraph.ModelsStream, twingraph.TypeModelUploaded, actor, &twingraph.ModelsUploaded{Models: defs})
		if err != nil {
			return engine.Decision{}, err
		}
		return engine.Decision{Events: []event.Event{ev},
			Expect: []eventlog.Expect{{Stream: twingraph.ModelsStream, Version: snap.ModelsVersion()}}}, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]ModelData, 0, len(ids))
	for i, id := range ids {
		var itf *dtdl.Interface
		for _, x := range itfs {
			if x.ID == id {
				itf = x
			}
		}
		rec := &twingraph.ModelRecord{ID: id, Uploaded: res.Appended.Time, Definition: defs[i], Position: res.Appended.First}
		out = append(out, modelData(rec, itf, false))
	}
	return out, nil
}

func parserError(err error) *engine.Error {
	var ve *dtdl.ValidationError
	if !errors.As(err, &ve) {
		return &engine.Error{Kind: engine.KindInvalid, Code: "DTDLParserError", Message: err.Error(), Err: err}
	}
	e := &engine.Error{Kind: engine.KindInvalid, Code: "DTDLParserError", Message: ve.Error()}
	if errors.Is(err, dtdl.ErrUnsupportedVersion) {
		e.Code = "ModelVersionNotSupported"
	}
	for _, d := range ve.Diagnostics {
		e.Details = append(e.Details, engine.Error{Kind: engine.KindInvalid, Code: d.Code, Message: d.String()})
	}
	return e
}

// GetModel returns a model's data, with its definition when asked.
func (s *Service) GetModel(ctx context.Context, id string, includeDefinition bool) (ModelData, error) {
	snap := s.g.Snapshot()
	rec, ok := snap.Model(id)
	if !ok {
		return ModelData{}, modelNotFound(id)
	}
	itf, _ := snap.Models().Get(id)
	return modelData(rec, itf, includeDefinition), nil
}

// ListModels returns every model in id order or, when dependenciesFor is
// not empty, those models and the models they depend on (extends and
// component schemas, transitively).
func (s *Service) ListModels(ctx context.Context, dependenciesFor []string, includeDefinition bool) ([]ModelData, error) {
	snap := s.g.Snapshot()
	reg := snap.Models()
	out := []ModelData{}
	if len(dependenciesFor) == 0 {
		for rec := range snap.ModelRecords() {
			itf, _ := reg.Get(rec.ID)
			out = append(out, modelData(rec, itf, includeDefinition))
		}
		return out, nil
	}
	seen := map[string]bool{}
	var visit func(itf *dtdl.Interface)
	visit = func(itf *dtdl.Interface) {
		if seen[itf.ID] {
			return
		}
		seen[itf.ID] = true
		for _, b := range itf.Bases {
			visit(b)
		}
		for _, c := range itf.AllContents() {
			if c.Kind == dtdl.KindComponent && c.ComponentSchema != nil {
				visit(c.ComponentSchema)
			}
		}
	}
	for _, id := range dependenciesFor {
		itf, ok := reg.Get(id)
		if !ok {
			return nil, modelNotFound(id)
		}
		visit(itf)
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if rec, ok := snap.Model(id); ok {
			itf, _ := reg.Get(id)
			out = append(out, modelData(rec, itf, includeDefinition))
		}
	}
	return out, nil
}

// DecommissionModel applies ADT's model patch, which may only be
// [{"op":"replace","path":"/decommissioned","value":true}]. Decommissioning
// is permanent; twins of the model remain, but no new ones can be created.
func (s *Service) DecommissionModel(ctx context.Context, actor, id string, patch []byte) error {
	ops, err := ParsePatch(patch)
	if err != nil {
		return patchInvalid(err)
	}
	if len(ops) == 0 {
		return invalid("InvalidArgument", "the model patch is empty")
	}
	for _, op := range ops {
		if op.Op != "replace" || len(op.Path) != 1 || op.Path[0] != "decommissioned" {
			return invalid("InvalidArgument", "only the decommissioned property can be replaced")
		}
		if b, ok := op.Value.(bool); !ok || !b {
			return invalid("InvalidArgument", "decommissioned can only be set to true")
		}
	}
	_, err = s.execute(ctx, func(ctx context.Context) (engine.Decision, error) {
		snap := s.g.Snapshot()
		if _, ok := snap.Model(id); !ok {
			return engine.Decision{}, modelNotFound(id)
		}
		if snap.Models().IsDecommissioned(id) {
			return engine.Decision{}, nil
		}
		ev, err := twingraph.NewEvent(twingraph.ModelsStream, twingraph.TypeModelDecommissioned, actor, &twingraph.ModelRef{ID: id})
		if err != nil {
			return engine.Decision{}, err
		}
		return engine.Decision{Events: []event.Event{ev},
			Expect: []eventlog.Expect{{Stream: twingraph.ModelsStream, Version: snap.ModelsVersion()}}}, nil
	})
	return err
}

// DeleteModel deletes a model no other model references (else
// ModelReferencesNotDeleted). Twins of the model remain readable and
// deletable, but their properties can no longer change.
func (s *Service) DeleteModel(ctx context.Context, actor, id string) error {
	_, err := s.execute(ctx, func(ctx context.Context) (engine.Decision, error) {
		snap := s.g.Snapshot()
		if _, ok := snap.Model(id); !ok {
			return engine.Decision{}, modelNotFound(id)
		}
		if by := snap.Models().ReferencedBy(id); len(by) > 0 {
			return engine.Decision{}, engine.Errorf(engine.KindConflict, "ModelReferencesNotDeleted",
				"model %s is referenced by %v; delete those first", id, by)
		}
		ev, err := twingraph.NewEvent(twingraph.ModelsStream, twingraph.TypeModelDeleted, actor, &twingraph.ModelRef{ID: id})
		if err != nil {
			return engine.Decision{}, err
		}
		return engine.Decision{Events: []event.Event{ev},
			Expect: []eventlog.Expect{{Stream: twingraph.ModelsStream, Version: snap.ModelsVersion()}}}, nil
	})
	return err
}
