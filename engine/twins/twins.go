package twins

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/schemas/dtdl"
)

// GetTwin returns the twin's ADT JSON and its ETag.
func (s *Service) GetTwin(ctx context.Context, id string) ([]byte, string, error) {
	t, ok := s.g.Snapshot().Twin(id)
	if !ok {
		return nil, "", twinNotFound(id)
	}
	body, etag := RenderTwin(t)
	return body, etag, nil
}

// AppendTwin is GetTwin appending the twin's JSON to dst, for callers that
// reuse their buffers (a reader answering many requests).
func (s *Service) AppendTwin(ctx context.Context, dst []byte, id string) ([]byte, string, error) {
	t, ok := s.g.Snapshot().Twin(id)
	if !ok {
		return dst, "", twinNotFound(id)
	}
	return t.AppendJSON(dst), t.ETag(), nil
}

// RenderTwin returns t's ADT JSON and its ETag, as GetTwin does.
func RenderTwin(t *twingraph.Twin) ([]byte, string) {
	return t.AppendJSON(make([]byte, 0, t.JSONSize())), t.ETag()
}

// PutTwin creates or replaces a twin (ADT DigitalTwins_Add). The body is
// an ADT twin: $metadata.$model, properties, every component of the model
// (possibly {}), optional $metadata.<prop>.sourceTime. $dtId and $etag
// are ignored. With cond.IfNoneMatchAny it only creates.
func (s *Service) PutTwin(ctx context.Context, actor, id string, body []byte, cond Cond) ([]byte, string, error) {
	if err := s.checkID("twin", id); err != nil {
		return nil, "", err
	}
	if len(body) > s.opts.MaxTwinBytes {
		return nil, "", tooLarge("twin", len(body), s.opts.MaxTwinBytes)
	}
	v, err := twingraph.DecodeJSON(body)
	if err != nil {
		return nil, "", invalid("InvalidArgument", "the twin body is not valid JSON: %v", err)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, "", invalid("InvalidArgument", "the twin body must be a JSON object")
	}
	var st twingraph.TwinState
	res, err := s.execute(ctx, func(ctx context.Context) (engine.Decision, error) {
		snap := s.g.Snapshot()
		cur, exists := snap.Twin(id)
		var etagPos uint64
		if exists {
			etagPos = cur.ETagPos
		}
		if err := checkCond(cond, exists, etagPos); err != nil {
			return engine.Decision{}, err
		}
		st, err = s.twinState(snap, id, doc, cur)
		if err != nil {
			return engine.Decision{}, err
		}
		typ := twingraph.TypeTwinCreated
		if exists {
			typ = twingraph.TypeTwinReplaced
		}
		ev, err := twingraph.NewEvent(twingraph.TwinStream(id), typ, actor, &st)
		if err != nil {
			return engine.Decision{}, err
		}
		return engine.Decision{
			Events: []event.Event{ev},
			Expect: []eventlog.Expect{{Stream: twingraph.TwinStream(id), Version: snap.StreamVersion(id)}},
		}, nil
	})
	if err != nil {
		return nil, "", err
	}
	t := twingraph.NewTwin(&st, res.Appended.First, res.Appended.Time)
	return t.AppendJSON(make([]byte, 0, t.JSONSize())), t.ETag(), nil
}

// twinState validates a PUT body against the model and returns the state
// to record.
func (s *Service) twinState(snap *twingraph.Snapshot, id string, doc map[string]any, cur *twingraph.Twin) (twingraph.TwinState, error) {
	st := twingraph.TwinState{ID: id}
	md, ok := doc["$metadata"].(map[string]any)
	if !ok {
		return st, validationFailed("the twin has no $metadata object")
	}
	model, ok := md["$model"].(string)
	if !ok || model == "" {
		return st, validationFailed("the twin has no $metadata.$model")
	}
	reg := snap.Models()
	itf, ok := reg.Get(model)
	if !ok {
		return st, validationFailed("model %s does not exist", model)
	}
	if reg.IsDecommissioned(model) && (cur == nil || cur.Model != model) {
		return st, invalid("ModelDecommissioned", "model %s is decommissioned; no new twins can use it", model)
	}
	st.Model = model
	for k, v := range doc {
		switch {
		case k == "$metadata":
			continue
		case k == "$dtId" || k == "$etag":
			continue
		case strings.HasPrefix(k, "$"):
			return st, validationFailed("%s is not a writable twin member", k)
		}
		c, ok := itf.Content(k)
		if !ok {
			return st, validationFailed("%s is not defined in model %s", k, model)
		}
		switch c.Kind {
		case dtdl.KindProperty:
			enc, err := s.propertyValue(c, k, v)
			if err != nil {
				return st, err
			}
			setRaw(&st.Properties, k, enc)
		case dtdl.KindComponent:
			m, ok := v.(map[string]any)
			if !ok {
				return st, validationFailed("component %s must be an object", k)
			}
			cs, err := s.componentState(c.ComponentSchema, k, m, false)
			if err != nil {
				return st, err
			}
			if st.Components == nil {
				st.Components = map[string]twingraph.SectionState{}
			}
			st.Components[k] = cs
		default:
			return st, validationFailed("%s is a %s of model %s, not a property", k, c.Kind, model)
		}
	}
	for name := range itf.Components() {
		if _, ok := st.Components[name]; !ok {
			return st, validationFailed("component %s must be initialized (it may be {})", name)
		}
	}
	sts, err := sourceTimes(md, st.Properties, "", false)
	if err != nil {
		return st, err
	}
	st.SourceTimes = sts
	return st, nil
}

func setRaw(m *map[string]json.RawMessage, k string, v []byte) {
	if *m == nil {
		*m = map[string]json.RawMessage{}
	}
	(*m)[k] = v
}

func (s *Service) propertyValue(c *dtdl.Content, name string, v any) ([]byte, error) {
	if err := s.checkProperty(c, name, v); err != nil {
		return nil, err
	}
	enc, err := twingraph.Canonical(v)
	if err != nil {
		return nil, validationFailed("property %s: %v", name, err)
	}
	return enc, nil
}

func (s *Service) componentState(itf *dtdl.Interface, name string, m map[string]any, patch bool) (twingraph.SectionState, error) {
	var cs twingraph.SectionState
	for k, v := range m {
		if k == "$metadata" {
			continue
		}
		if strings.HasPrefix(k, "$") {
			return cs, validationFailed("%s/%s is not a writable member", name, k)
		}
		c, ok := itf.Content(k)
		if !ok {
			return cs, validationFailed("%s is not defined in component %s (%s)", k, name, itf.ID)
		}
		if c.Kind != dtdl.KindProperty {
			return cs, validationFailed("%s in component %s is a %s, not a property", k, name, c.Kind)
		}
		enc, err := s.propertyValue(c, name+"/"+k, v)
		if err != nil {
			return cs, err
		}
		setRaw(&cs.Properties, k, enc)
	}
	md, _ := m["$metadata"].(map[string]any)
	if _, present := m["$metadata"]; present && md == nil {
		return cs, validationFailed("%s/$metadata must be an object", name)
	}
	sts, err := sourceTimes(md, cs.Properties, name+"/", patch)
	if err != nil {
		return cs, err
	}
	cs.SourceTimes = sts
	return cs, nil
}

// sourceTimes extracts <prop>.sourceTime from a $metadata object. Entries
// must name set properties; lastUpdateTime is read-only and ignored.
//
// A PUT body may carry lastUpdateTime (as returned by GET; it is ignored),
// a patched document may not (patch is set then).
func sourceTimes(md map[string]any, props map[string]json.RawMessage, prefix string, patch bool) (map[string]string, error) {
	var out map[string]string
	for k, v := range md {
		if k == "$model" || k == "$lastUpdateTime" {
			continue
		}
		if strings.HasPrefix(k, "$") {
			return nil, validationFailed("%s$metadata.%s is not writable", prefix, k)
		}
		pm, ok := v.(map[string]any)
		if !ok {
			return nil, validationFailed("%s$metadata.%s must be an object", prefix, k)
		}
		for mk := range pm {
			if mk != "sourceTime" && (mk != "lastUpdateTime" || patch) {
				return nil, validationFailed("%s$metadata.%s.%s is not writable", prefix, k, mk)
			}
		}
		raw, ok := pm["sourceTime"]
		if !ok {
			continue
		}
		if _, set := props[k]; !set {
			return nil, validationFailed("%s$metadata.%s.sourceTime is given for a property that is not set", prefix, k)
		}
		st, err := checkSourceTime(raw)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = st
	}
	return out, nil
}

// PatchTwin applies a JSON Patch to a twin (ADT DigitalTwins_Update) and
// returns the new ETag. Paths address properties (nested Object and Map
// members included), components (/<component>/<prop>...), /$metadata/$model
// (migration: the whole twin is validated against the new model) and
// /$metadata/<prop>/sourceTime. All operations apply or none. A patch
// that passes its checks is carried out even when ctx ends while it waits
// for its turn; ctx carries its cause (WithCause). Nothing refers to patch's
// bytes once it returns: callers may reuse them.
func (s *Service) PatchTwin(ctx context.Context, actor, id string, patch []byte, cond Cond) (string, error) {
	return s.patch(ctx, actor, id, "", patch, cond)
}

// PatchComponent applies a JSON Patch whose paths are relative to the
// component (ADT DigitalTwins_UpdateComponent). Nothing refers to patch's
// bytes once it returns.
func (s *Service) PatchComponent(ctx context.Context, actor, id, component string, patch []byte, cond Cond) (string, error) {
	if component == "" {
		return "", invalid("InvalidArgument", "the component name is empty")
	}
	return s.patch(ctx, actor, id, component, patch, cond)
}

// Patch is one patch of PatchTwins.
type Patch struct {
	ID string
	// Component is "" for a patch of the twin, else the component its
	// paths are relative to (as PatchComponent).
	Component string
	Patch     []byte
	Cond      Cond
	// Cause is recorded in the patch's event; zero for ctx's (WithCause).
	Cause Cause
}

// PatchResult is the outcome of one patch of PatchTwins: the twin's new
// ETag, or why the patch was refused.
type PatchResult struct {
	ETag string
	Err  error
}

// PatchTwins applies patches as as many calls to PatchTwin and
// PatchComponent would, each on its own (one may be refused while the
// others apply), and returns once all are done, out[i] the result of
// patches[i]. Patches to one twin apply in their order. It costs less per
// patch than separate calls: one goroutine waits for all, and they are
// queued for the shared log writes together. Nothing refers to the
// patches' bytes once it returns.
func (s *Service) PatchTwins(ctx context.Context, actor string, patches []Patch) []PatchResult {
	out := make([]PatchResult, len(patches))
	ws := make([]*write, 0, len(patches))
	at := make([]int, 0, len(patches))
	for i := range patches {
		p := &patches[i]
		ops, err := s.parseOps(p.Patch, p.Component)
		if err != nil {
			out[i].Err = err
			continue
		}
		w := s.newWrite(actor, p.ID, p.Component, ops, p.Cond)
		w.cause = p.Cause
		ws = append(ws, w)
		at = append(at, i)
	}
	if len(ws) > 0 {
		s.writes.submit(ctx, &group{}, ws...)
	}
	for k, w := range ws {
		out[at[k]].ETag, out[at[k]].Err = w.result()
		putWrite(w)
	}
	return out
}

// newWrite returns a recycled write of ops to twin id (see putWrite).
func (s *Service) newWrite(actor, id, component string, ops []Op, cond Cond) *write {
	w := getWrite()
	w.svc, w.actor, w.id, w.component, w.ops, w.cond = s, actor, id, component, ops, cond
	w.stream = twingraph.TwinStream(id)
	return w
}

// result returns the outcome of an executed write: the twin's ETag after
// it, or its error.
func (w *write) result() (string, error) {
	if w.err != nil {
		return "", w.err
	}
	etagPos := w.etagPos
	if w.pos != 0 {
		etagPos = w.pos
	}
	return twingraph.ETag(etagPos), nil
}

// parseOps parses a twin or component patch into operations on the twin.
func (s *Service) parseOps(patch []byte, component string) ([]Op, error) {
	if len(patch) > s.opts.MaxTwinBytes {
		return nil, tooLarge("patch", len(patch), s.opts.MaxTwinBytes)
	}
	ops, err := ParsePatch(patch)
	if err != nil {
		return nil, patchInvalid(err)
	}
	if component != "" {
		for i := range ops {
			ops[i].Path = append([]string{component}, ops[i].Path...)
			if ops[i].From != nil {
				ops[i].From = append([]string{component}, ops[i].From...)
			}
		}
	}
	return ops, nil
}

func (s *Service) patch(ctx context.Context, actor, id, component string, patch []byte, cond Cond) (string, error) {
	ops, err := s.parseOps(patch, component)
	if err != nil {
		return "", err
	}
	w := s.newWrite(actor, id, component, ops, cond)
	defer putWrite(w)
	s.writes.do(ctx, w)
	return w.result()
}

// decide decides w's patch against snap: its event (nil when the patch
// changes nothing), the expectation it relies on, or its error. The event
// is w's own, valid until the next decision.
func (w *write) decide(snap *twingraph.Snapshot) (*event.Event, eventlog.Expect, error) {
	cur, ok := snap.Twin(w.id)
	if !ok {
		return nil, eventlog.Expect{}, twinNotFound(w.id)
	}
	if w.component != "" {
		if _, ok := cur.Component(w.component); !ok {
			return nil, eventlog.Expect{}, engine.Errorf(engine.KindNotFound, "ComponentNotFound", "twin %s has no component %s", w.id, w.component)
		}
	}
	if err := checkCond(w.cond, true, cur.ETagPos); err != nil {
		return nil, eventlog.Expect{}, err
	}
	p, err := w.svc.patchTwin(snap, cur, w.ops)
	if err != nil {
		return nil, eventlog.Expect{}, err
	}
	w.etagPos = cur.ETagPos
	if p == nil {
		return nil, eventlog.Expect{}, nil // nothing changed
	}
	w.ev = twingraph.NewPatchedEvent(w.stream, w.actor, p)
	putPatched(p) // the event holds its own encoding
	return &w.ev, eventlog.Expect{Stream: w.stream, Version: cur.Version}, nil
}

// patchTwin applies ops to cur and returns the change to record, or nil
// when nothing changed. Only the top-level members the patch touches are
// decoded, unless it touches $metadata, which loads the whole twin.
func (s *Service) patchTwin(snap *twingraph.Snapshot, cur *twingraph.Twin, ops []Op) (*twingraph.TwinPatched, error) {
	if p, ok, err := s.patchProps(snap, cur, ops); ok {
		return p, err
	}
	full := false
	keys := make([]string, 0, len(ops))
	for _, op := range ops {
		for _, p := range [][]string{op.Path, op.From} {
			if p == nil {
				continue
			}
			if len(p) == 0 {
				return nil, patchInvalid(errors.New("the twin root cannot be replaced, moved or removed as a whole"))
			}
			switch {
			case p[0] == "$metadata":
				full = true
			case strings.HasPrefix(p[0], "$"):
				return nil, patchInvalid(errors.New(p[0] + " cannot be patched"))
			}
			if !slices.Contains(keys, p[0]) {
				keys = append(keys, p[0])
			}
		}
	}
	doc := map[string]any{}
	if full {
		keys = keys[:0]
		for i := range cur.Props {
			keys = append(keys, cur.Props[i].Name)
		}
		for i := range cur.Components {
			keys = append(keys, cur.Components[i].Name)
		}
		md := map[string]any{"$model": cur.Model}
		for i := range cur.Props {
			md[cur.Props[i].Name] = propMeta(&cur.Props[i])
		}
		doc["$metadata"] = md
	}
	for _, k := range keys {
		if p, ok := cur.Prop(k); ok {
			v, err := twingraph.DecodeJSON([]byte(p.Value))
			if err != nil {
				return nil, err
			}
			doc[k] = v
		} else if c, ok := cur.Component(k); ok {
			cd, err := componentDoc(c)
			if err != nil {
				return nil, err
			}
			doc[k] = cd
		}
	}
	out, err := Apply(doc, ops)
	if err != nil {
		return nil, patchInvalid(err)
	}
	ndoc := out.(map[string]any)

	model := cur.Model
	var md map[string]any
	if full {
		var ok bool
		if md, ok = ndoc["$metadata"].(map[string]any); !ok {
			return nil, validationFailed("$metadata must be an object")
		}
		if model, ok = md["$model"].(string); !ok {
			return nil, validationFailed("$metadata.$model must be a string")
		}
		delete(ndoc, "$metadata")
		for k := range ndoc {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	reg := snap.Models()
	itf, ok := reg.Get(model)
	if !ok {
		if model == cur.Model {
			return nil, validationFailed("the model %s of twin %s was deleted; its properties cannot be changed", model, cur.ID)
		}
		return nil, validationFailed("model %s does not exist", model)
	}
	p := &twingraph.TwinPatched{ID: cur.ID}
	if model != cur.Model {
		if reg.IsDecommissioned(model) {
			return nil, invalid("ModelDecommissioned", "model %s is decommissioned; twins cannot migrate to it", model)
		}
		p.Model = model
		for name := range itf.Components() {
			if _, ok := ndoc[name]; !ok {
				return nil, validationFailed("component %s of model %s must be added when migrating", name, model)
			}
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		nv, present := ndoc[k]
		oldProp, wasProp := cur.Prop(k)
		oldComp, wasComp := cur.Component(k)
		c, inModel := itf.Content(k)
		if !present {
			if wasProp {
				p.Unset = append(p.Unset, k)
			}
			if wasComp {
				if inModel && c.Kind == dtdl.KindComponent {
					return nil, validationFailed("component %s cannot be removed", k)
				}
				setComp(p, k, twingraph.ComponentChange{Remove: true})
			}
			continue
		}
		if !inModel {
			return nil, validationFailed("%s is not defined in model %s", k, model)
		}
		switch c.Kind {
		case dtdl.KindProperty:
			enc, err := s.propertyValue(c, k, nv)
			if err != nil {
				return nil, err
			}
			if wasComp {
				setComp(p, k, twingraph.ComponentChange{Remove: true})
			}
			if !wasProp || string(enc) != oldProp.Value {
				setRaw(&p.Set, k, enc)
			}
		case dtdl.KindComponent:
			m, ok := nv.(map[string]any)
			if !ok {
				return nil, validationFailed("component %s must be an object", k)
			}
			var old *twingraph.Section
			if wasComp {
				old = &oldComp.Section
			}
			ch, err := s.componentChange(c.ComponentSchema, k, old, m)
			if err != nil {
				return nil, err
			}
			if wasProp {
				p.Unset = append(p.Unset, k)
			}
			ch.Create = !wasComp
			if ch.Create || len(ch.Set)+len(ch.Unset)+len(ch.SourceTimes) > 0 {
				setComp(p, k, ch)
			}
		default:
			return nil, validationFailed("%s is a %s of model %s, not a property", k, c.Kind, model)
		}
	}
	if full {
		set := map[string]json.RawMessage{}
		for k := range ndoc {
			if c, ok := itf.Content(k); ok && c.Kind == dtdl.KindProperty {
				set[k] = nil
			}
		}
		sts, err := sourceTimes(md, set, "", true)
		if err != nil {
			return nil, err
		}
		for k := range set {
			var old string
			if op, ok := cur.Prop(k); ok {
				old = op.SourceTime
			}
			if sts[k] != old {
				if p.SourceTimes == nil {
					p.SourceTimes = map[string]string{}
				}
				p.SourceTimes[k] = sts[k]
			}
		}
	}
	if p.Model == "" && len(p.Set)+len(p.Unset)+len(p.SourceTimes)+len(p.Components) == 0 {
		return nil, nil
	}
	raw, err := MarshalOps(ops)
	if err != nil {
		return nil, patchInvalid(err)
	}
	p.Patch = raw
	return p, nil
}

// patchProps is patchTwin for the common patch: add, replace or remove
// of distinct root properties of the twin's model, which needs neither the
// current values decoded nor the JSON Patch applied to a document. It
// reports false, having done nothing, for any other patch, and for one
// that fails (replacing or removing a missing property, a deleted model)
// so that the general path reports the error.
func (s *Service) patchProps(snap *twingraph.Snapshot, cur *twingraph.Twin, ops []Op) (*twingraph.TwinPatched, bool, error) {
	if len(ops) > 8 {
		return nil, false, nil
	}
	itf, ok := snap.Models().Get(cur.Model)
	if !ok {
		return nil, false, nil
	}
	for i, op := range ops {
		if len(op.Path) != 1 || (op.Op != "add" && op.Op != "replace" && op.Op != "remove") {
			return nil, false, nil
		}
		k := op.Path[0]
		if strings.HasPrefix(k, "$") {
			return nil, false, nil
		}
		for _, o := range ops[:i] {
			if o.Path[0] == k {
				return nil, false, nil
			}
		}
		if c, ok := itf.Content(k); !ok || c.Kind != dtdl.KindProperty {
			return nil, false, nil
		}
		if _, ok := cur.Component(k); ok {
			return nil, false, nil
		}
		if _, ok := cur.Prop(k); !ok && op.Op != "add" {
			return nil, false, nil
		}
	}
	var orderBuf [8]int
	order := orderBuf[:len(ops)]
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(ops[a].Path[0], ops[b].Path[0]) })
	p := getPatched()
	p.ID = cur.ID
	for _, i := range order {
		op := &ops[i]
		k := op.Path[0]
		old, wasProp := cur.Prop(k)
		if op.Op == "remove" {
			p.Unset = append(p.Unset, k)
			continue
		}
		c, _ := itf.Content(k)
		enc, err := s.propertyValue(c, k, op.Value)
		if err != nil {
			return nil, true, err
		}
		if !wasProp || string(enc) != old.Value {
			setRaw(&p.Set, k, enc)
		}
	}
	if len(p.Set)+len(p.Unset) == 0 {
		return nil, true, nil
	}
	raw, err := MarshalOps(ops)
	if err != nil {
		return nil, true, patchInvalid(err)
	}
	p.Patch = raw
	return p, true, nil
}

// patchedPool recycles the change records of property patches, with the
// map of their set properties: a record is garbage once its event is
// encoded, and a small map costs ~400 bytes.
var patchedPool = sync.Pool{New: func() any { return new(twingraph.TwinPatched) }}

func getPatched() *twingraph.TwinPatched { return patchedPool.Get().(*twingraph.TwinPatched) }

// putPatched recycles p, keeping only its emptied map of set properties
// (when small) for the next record.
func putPatched(p *twingraph.TwinPatched) {
	set := p.Set
	if len(set) > 16 {
		set = nil
	}
	clear(set)
	*p = twingraph.TwinPatched{}
	p.Set = set
	patchedPool.Put(p)
}

func setComp(p *twingraph.TwinPatched, name string, ch twingraph.ComponentChange) {
	if p.Components == nil {
		p.Components = map[string]twingraph.ComponentChange{}
	}
	p.Components[name] = ch
}

func propMeta(p *twingraph.Prop) map[string]any {
	m := map[string]any{}
	if p.SourceTime != "" {
		m["sourceTime"] = p.SourceTime
	}
	return m
}

func componentDoc(c *twingraph.Component) (map[string]any, error) {
	m := make(map[string]any, len(c.Props)+1)
	md := make(map[string]any, len(c.Props))
	for i := range c.Props {
		p := &c.Props[i]
		v, err := twingraph.DecodeJSON([]byte(p.Value))
		if err != nil {
			return nil, err
		}
		m[p.Name] = v
		md[p.Name] = propMeta(p)
	}
	m["$metadata"] = md
	return m, nil
}

// componentChange diffs a patched component value against its old state.
func (s *Service) componentChange(itf *dtdl.Interface, name string, old *twingraph.Section, m map[string]any) (twingraph.ComponentChange, error) {
	var ch twingraph.ComponentChange
	cs, err := s.componentState(itf, name, m, true)
	if err != nil {
		return ch, err
	}
	var oldProps []twingraph.Prop
	if old != nil {
		oldProps = old.Props
	}
	for k, v := range cs.Properties {
		var op *twingraph.Prop
		if old != nil {
			op, _ = old.Prop(k)
		}
		if op == nil || op.Value != string(v) {
			setRaw(&ch.Set, k, v)
		}
		var oldST string
		if op != nil {
			oldST = op.SourceTime
		}
		if cs.SourceTimes[k] != oldST {
			if ch.SourceTimes == nil {
				ch.SourceTimes = map[string]string{}
			}
			ch.SourceTimes[k] = cs.SourceTimes[k]
		}
	}
	for _, op := range oldProps {
		if _, ok := cs.Properties[op.Name]; !ok {
			ch.Unset = append(ch.Unset, op.Name)
		}
	}
	return ch, nil
}

// DeleteTwin deletes a twin that has no relationships, incoming or
// outgoing (else RelationshipsNotDeleted).
func (s *Service) DeleteTwin(ctx context.Context, actor, id string, cond Cond) error {
	_, err := s.execute(ctx, func(ctx context.Context) (engine.Decision, error) {
		snap := s.g.Snapshot()
		cur, ok := snap.Twin(id)
		if !ok {
			return engine.Decision{}, twinNotFound(id)
		}
		if err := checkCond(cond, true, cur.ETagPos); err != nil {
			return engine.Decision{}, err
		}
		if snap.HasRelationships(id) {
			return engine.Decision{}, invalid("RelationshipsNotDeleted", "twin %s still has relationships; delete them first", id)
		}
		ev, err := twingraph.NewEvent(twingraph.TwinStream(id), twingraph.TypeTwinDeleted, actor, &twingraph.TwinRef{ID: id})
		if err != nil {
			return engine.Decision{}, err
		}
		return engine.Decision{
			Events: []event.Event{ev},
			Expect: []eventlog.Expect{{Stream: twingraph.TwinStream(id), Version: cur.Version}},
		}, nil
	})
	return err
}

// GetComponent returns a component's JSON (its properties and $metadata)
// and the twin's ETag.
func (s *Service) GetComponent(ctx context.Context, id, component string) ([]byte, string, error) {
	t, ok := s.g.Snapshot().Twin(id)
	if !ok {
		return nil, "", twinNotFound(id)
	}
	out, ok := t.AppendComponentJSON(nil, component)
	if !ok {
		return nil, "", engine.Errorf(engine.KindNotFound, "ComponentNotFound", "twin %s has no component %s", id, component)
	}
	return out, t.ETag(), nil
}
