package twingraph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/hashicorp/go-memdb"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/schemas/dtdl"
)

var _ engine.Projection = (*Graph)(nil)

// Table names.
const (
	tableModels = "models"
	tableTombs  = "tombs"
)

// ModelRecord is what the graph keeps about an uploaded model besides its
// resolved interface. It is immutable once inserted.
type ModelRecord struct {
	ID string
	// Uploaded is the upload time, Unix nanoseconds (the event time).
	Uploaded int64
	// Decommissioned is set once the model was decommissioned.
	Decommissioned bool
	// Definition is the DTDL document as uploaded.
	Definition []byte
	// Position is the position of the model.uploaded event.
	Position uint64
}

// tomb keeps the stream version of a deleted twin, the expectation for
// re-creating it.
type tomb struct {
	ID      string
	Version uint64
}

// TelemetryRecord is the last-known telemetry of a twin and the recent
// message ids used to de-duplicate sends. It is immutable once inserted.
type TelemetryRecord struct {
	Twin string
	// Version is the telemetry stream's version.
	Version uint64
	// Recent are the most recent message ids, oldest first.
	Recent []string
	// Last is the last message per component ("" for the twin root),
	// sorted by component.
	Last []TelemetryValue

	// recent, when not nil, is the whole array of Recent in a record a
	// write transaction changes: Recent is a window on it that add moves
	// forward, so that recording an id rarely moves the others. shifts
	// counts the ids the transaction recorded before it had one.
	recent []string
	shifts int
}

// windowAfter is how many ids a transaction records in a twin's full list
// of recent ones, moving the others each time, before it makes room for a
// window (see TelemetryRecord.recent).
const windowAfter = 4

// TelemetryValue is one telemetry message as last received.
type TelemetryValue struct {
	Component  string
	MessageID  string
	Time       int64
	SourceTime string
	Body       []byte
}

// RecentMessageIDs is how many message ids per twin are remembered for
// de-duplication.
const RecentMessageIDs = 32

// Options configures a Graph. The zero value is valid.
type Options struct {
	// DTDL configures model parsing. Default: each DTDL version's defaults.
	DTDL dtdl.Options
}

// Graph is the live twin graph: models, twins and relationships as of a log
// position, kept in go-memdb. It implements engine.Projection: one goroutine
// applies batches in log order, each in one write transaction; any number of
// readers take Snapshots, which are consistent and never block the writer.
type Graph struct {
	// id tells the twin values this graph's writer made from those it
	// shares with the graph it was forked from (Twin.owner).
	id uint32
	// Writer state, owned by the goroutine calling Apply.
	gen           uint64  // the last transaction's (Twin.gen)
	hints         hintLog // the transaction's, reused
	db            *memdb.MemDB
	twins         twinTrees
	reg           *dtdl.Registry
	modelsVersion uint64
	pos           uint64
	names         map[string]string // interned relationship names
	// telem holds each twin's TelemetryRecord, by twin id: a memdb table
	// would cost an index insert per twin per batch of telemetry.
	telem btree[string, *TelemetryRecord]

	cur atomic.Pointer[Snapshot]
}

// New returns an empty graph at position 0.
func New(opts Options) *Graph {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		panic(fmt.Sprintf("twingraph: invalid schema: %v", err)) // a bug, caught by every test
	}
	// A snapshot of the database is itself writable, and does not track
	// mutations for watchers (which we never use): much cheaper writes.
	g := &Graph{id: newGraphID(), db: db.Snapshot(), twins: newTwinTrees(), reg: dtdl.NewRegistry(opts.DTDL), names: map[string]string{},
		telem: newBtree[string, *TelemetryRecord](strings.Compare)}
	g.publish()
	return g
}

// graphIDs numbers graphs for Twin.owner; 0 is no graph.
var graphIDs atomic.Uint32

func newGraphID() uint32 {
	for {
		if id := graphIDs.Add(1); id != 0 {
			return id
		}
	}
}

func (g *Graph) publish() {
	// A read transaction of memdb only reads immutable trees, so one can
	// serve any number of goroutines.
	db := g.db.Snapshot()
	g.cur.Store(&Snapshot{db: db, txn: db.Txn(false), twins: g.twins, telem: g.telem, reg: g.reg, pos: g.pos, modelsVersion: g.modelsVersion, owner: g.id, gen: g.gen})
}

// Position returns the position of the last applied event.
func (g *Graph) Position() uint64 { return g.cur.Load().pos }

// Apply implements engine.Projection. Events of types it does not know are
// skipped. It is deterministic: times come from the events.
func (g *Graph) Apply(batch []event.Event) error {
	if len(batch) == 0 {
		return nil
	}
	a := applier{g: g, txn: g.db.Txn(true), twins: g.twins.txn(g.id, &g.hints), reg: g.reg, modelsVersion: g.modelsVersion}
	a.gen = a.twins.byID.gen
	for i := range batch {
		if err := a.apply(&batch[i]); err != nil {
			a.txn.Abort()
			return err
		}
	}
	a.txn.Commit()
	g.twins, g.gen = a.twins.commit(a.gen), a.gen
	if a.telemTx != nil {
		g.telem = a.telemTx.Commit()
	}
	g.reg, g.modelsVersion, g.pos = a.reg, a.modelsVersion, batch[len(batch)-1].Position
	g.publish()
	return nil
}

type applier struct {
	g             *Graph
	gen           uint64 // the transaction's generation: Twin.gen of the twins it made
	txn           *memdb.Txn
	twins         twinTxn
	reg           *dtdl.Registry
	modelsVersion uint64
	// telem are the telemetry records this transaction changed, by twin,
	// in telemTx: no snapshot sees them before the commit, so they are
	// changed in place, however many points a twin gets.
	telem   map[string]*TelemetryRecord
	telemTx *btxn[string, *TelemetryRecord]
}

func (a *applier) apply(e *event.Event) error {
	switch {
	case e.Stream == ModelsStream:
		a.modelsVersion = e.Position
		return a.applyModel(e)
	case strings.HasPrefix(e.Stream, twinPrefix):
		return a.applyTwin(e)
	case strings.HasPrefix(e.Stream, telemPrefix):
		if e.Type == TypeTelemetry {
			return a.applyTelemetry(e)
		}
	case e.Type == TypeTelemetryBatch:
		return a.applyTelemetryBatch(e)
	}
	return nil
}

func (a *applier) applyModel(e *event.Event) error {
	switch e.Type {
	case TypeModelUploaded:
		var p ModelsUploaded
		if err := Decode(e, &p); err != nil {
			return err
		}
		next, itfs, err := a.reg.Add(ModelDocuments(p.Models))
		if err != nil {
			return fmt.Errorf("model.uploaded at %d: %w", e.Position, err)
		}
		a.reg = next
		for _, itf := range itfs {
			i, err := strconv.Atoi(itf.File)
			if err != nil || i < 0 || i >= len(p.Models) || !isRootOf(itf.ID, p.Models[i]) {
				continue // an interface defined inline: not a model of its own
			}
			rec := &ModelRecord{ID: itf.ID, Uploaded: e.Time, Definition: p.Models[i], Position: e.Position}
			if err := a.txn.Insert(tableModels, rec); err != nil {
				return err
			}
		}
	case TypeModelDecommissioned:
		var p ModelRef
		if err := Decode(e, &p); err != nil {
			return err
		}
		next, err := a.reg.Decommission(p.ID)
		if err != nil {
			return fmt.Errorf("model.decommissioned at %d: %w", e.Position, err)
		}
		a.reg = next
		raw, err := a.txn.First(tableModels, "id", p.ID)
		if err != nil {
			return err
		}
		if raw != nil {
			rec := *raw.(*ModelRecord)
			rec.Decommissioned = true
			if err := a.txn.Insert(tableModels, &rec); err != nil {
				return err
			}
		}
	case TypeModelDeleted:
		var p ModelRef
		if err := Decode(e, &p); err != nil {
			return err
		}
		next, err := a.reg.Remove(p.ID)
		if err != nil {
			return fmt.Errorf("model.deleted at %d: %w", e.Position, err)
		}
		a.reg = next
		if _, err := a.txn.DeleteAll(tableModels, "id", p.ID); err != nil {
			return err
		}
	}
	return nil
}

// ModelDocuments names each document of an upload by its index, the form
// the Graph and the twin service both resolve.
func ModelDocuments(models []json.RawMessage) []dtdl.Document {
	docs := make([]dtdl.Document, len(models))
	for i, m := range models {
		docs[i] = dtdl.Document{Name: strconv.Itoa(i), Data: m}
	}
	return docs
}

// isRootOf reports whether doc's top-level @id is id.
func isRootOf(id string, doc []byte) bool {
	got, _ := TopLevelID(doc)
	return got == id
}

func (a *applier) twin(id string) (*Twin, error) {
	return a.twins.get(id), nil
}

// patchFast applies a property patch with one descent of the twins' tree,
// reporting false, having changed nothing, when the general path must: the
// twin is missing (an error there) or the patch is not one patchedFast
// takes.
func (a *applier) patchFast(id string, e *event.Event) bool {
	slot := a.twins.slot(id)
	if slot == nil {
		return false
	}
	cur := *slot
	t, ok := cur.patchedFast(e.Payload, e.Position, e.Time, a.gen, a.intern)
	if !ok {
		return false
	}
	// Every name is interned already: the twin's, or interned as added.
	// A twin of this transaction was changed in place, and is in the tree
	// already.
	if t != cur {
		a.twins.replace(slot, t)
	}
	return true
}

func (a *applier) applyTwin(e *event.Event) error {
	id := e.Stream[len(twinPrefix):]
	if e.Type == TypeTwinPatched && e.SchemaVersion == PatchedSchemaVersion && a.patchFast(id, e) {
		return nil
	}
	cur, err := a.twin(id)
	if err != nil {
		return err
	}
	switch e.Type {
	case TypeTwinCreated, TypeTwinReplaced:
		var t *Twin
		fast := false
		if e.SchemaVersion == SchemaVersion {
			t, fast = newTwinFast(e.Payload, e.Position, e.Time, a.internBytes)
		}
		if !fast {
			var p TwinState
			if err := Decode(e, &p); err != nil {
				return err
			}
			t = NewTwin(&p, e.Position, e.Time)
		}
		t.ID, t.ownProps = id, true
		if itf, ok := a.reg.Get(t.Model); ok {
			t.Model = itf.ID // share the string
		}
		if cur == nil {
			if _, err := a.txn.DeleteAll(tableTombs, "id", id); err != nil {
				return err
			}
		} else {
			t.Out, t.In = cur.Out, cur.In
		}
		if fast {
			// Its names are interned already.
			t.gen = a.gen
			a.twins.put(t)
			return nil
		}
		return a.insertTwin(t)
	case TypeTwinPatched:
		if cur == nil {
			return fmt.Errorf("twin.patched at %d: twin %q does not exist", e.Position, id)
		}
		// patchFast took what the binary payload's fast path takes.
		var p TwinPatched
		if err := Decode(e, &p); err != nil {
			return err
		}
		t := cur.Patched(&p, e.Position, e.Time)
		if itf, ok := a.reg.Get(t.Model); ok {
			t.Model = itf.ID
		}
		return a.insertTwin(t)
	case TypeTwinDeleted:
		if cur == nil {
			return fmt.Errorf("twin.deleted at %d: twin %q does not exist", e.Position, id)
		}
		a.twins.delete(cur)
		return a.txn.Insert(tableTombs, &tomb{ID: id, Version: e.Position})
	case TypeRelationshipCreated, TypeRelationshipReplaced:
		var p RelationshipState
		if e.SchemaVersion != SchemaVersion || !relationshipFast(e.Payload, &p, a.internBytes) {
			p = RelationshipState{}
			if err := Decode(e, &p); err != nil {
				return err
			}
		}
		if cur == nil {
			return fmt.Errorf("%s at %d: source twin %q does not exist", e.Type, e.Position, id)
		}
		tgt, err := a.twin(p.Target)
		if err != nil {
			return err
		}
		if tgt == nil {
			return fmt.Errorf("%s at %d: target twin %q does not exist", e.Type, e.Position, p.Target)
		}
		r := &Relationship{Source: cur.ID, ID: p.ID, Name: a.intern(p.Name), Target: tgt.ID, ETagPos: e.Position}
		if string(p.Properties) != "{}" {
			r.Props = string(p.Properties)
		}
		src := a.mutable(cur)
		if tgt == cur {
			tgt = src
		}
		src.Version = e.Position
		old, _ := src.Outgoing(p.ID)
		src.Out = withRel(src.Out, r, outCmp)
		if old != nil && old.Target != r.Target {
			if ot, err := a.twin(old.Target); err == nil && ot != nil {
				ot = a.mutable(ot)
				ot.In = withoutRel(ot.In, old, inCmp)
			}
		}
		tgt = a.mutable(tgt)
		tgt.In = withRel(tgt.In, r, inCmp)
		return nil
	case TypeRelationshipPatched:
		var p RelationshipPatched
		if err := Decode(e, &p); err != nil {
			return err
		}
		var old *Relationship
		if cur != nil {
			old, _ = cur.Outgoing(p.ID)
		}
		if old == nil {
			return fmt.Errorf("relationship.patched at %d: relationship %s/%s does not exist", e.Position, id, p.ID)
		}
		r := Relationship{Source: old.Source, ID: old.ID, Name: old.Name, Target: old.Target,
			Props: string(p.Properties), ETagPos: e.Position}
		if r.Props == "{}" {
			r.Props = ""
		}
		src := a.mutable(cur)
		src.Version = e.Position
		src.Out = withRel(src.Out, &r, outCmp)
		if tgt, err := a.twin(r.Target); err == nil && tgt != nil {
			tgt = a.mutable(tgt)
			tgt.In = withRel(tgt.In, &r, inCmp)
		}
		return nil
	case TypeRelationshipDeleted:
		var p RelationshipRef
		if err := Decode(e, &p); err != nil {
			return err
		}
		if cur == nil {
			return fmt.Errorf("relationship.deleted at %d: source twin %q does not exist", e.Position, id)
		}
		old, ok := cur.Outgoing(p.ID)
		src := a.mutable(cur)
		src.Version = e.Position
		if !ok {
			return nil
		}
		src.Out = withoutRel(src.Out, old, outCmp)
		if tgt, err := a.twin(old.Target); err == nil && tgt != nil {
			tgt = a.mutable(tgt)
			tgt.In = withoutRel(tgt.In, old, inCmp)
		}
		return nil
	default:
		// Markers (relationship.linked, relationship.unlinked) and
		// unknown types on a twin's stream only advance its version.
		if cur != nil {
			a.mutable(cur).Version = e.Position
			return nil
		}
		return a.txn.Insert(tableTombs, &tomb{ID: id, Version: e.Position})
	}
}

// mutable returns a twin the applier may change in place: t itself if it
// was made by this transaction (no snapshot can see it yet), else a copy,
// inserted now, which shares t's slices (see Twin.ownProps). Index keys
// (ID, Model) must not be changed in place.
func (a *applier) mutable(t *Twin) *Twin {
	if t.gen == a.gen {
		return t
	}
	n := t.clone()
	a.insertTwin(n)
	return n
}

// insertTwin puts t, a twin made by this transaction, into the twins.
func (a *applier) insertTwin(t *Twin) error {
	a.internNames(t)
	t.gen = a.gen
	a.twins.put(t)
	return nil
}

// internNames shares property and component names between twins: they
// come from a few models, and a fresh string per twin per property adds up.
// Slices shared with published twins already hold interned names and are
// not written to.
func (a *applier) internNames(t *Twin) {
	a.internProps(t.Props)
	for i := range t.Components {
		c := &t.Components[i]
		if n := a.intern(c.Name); unsafe.StringData(n) != unsafe.StringData(c.Name) {
			c.Name = n
		}
		a.internProps(c.Props)
	}
}

func (a *applier) internProps(props []Prop) {
	for i := range props {
		if n := a.intern(props[i].Name); unsafe.StringData(n) != unsafe.StringData(props[i].Name) {
			props[i].Name = n
		}
	}
}

// internBytes is intern of a name read from a payload.
func (a *applier) internBytes(name []byte) string {
	if s, ok := a.g.names[string(name)]; ok {
		return s
	}
	s := string(name)
	a.g.names[s] = s
	return s
}

func (a *applier) intern(name string) string {
	if s, ok := a.g.names[name]; ok {
		return s
	}
	a.g.names[name] = name
	return name
}

func (a *applier) applyTelemetry(e *event.Event) error {
	var p Telemetry
	if e.SchemaVersion == SchemaVersion && telemetryFast(e.Payload, &p) {
		// The body aliases the payload: copy it, as Decode does.
		p.Body = bytes.Clone(p.Body)
	} else {
		p = Telemetry{}
		if err := Decode(e, &p); err != nil {
			return err
		}
	}
	rec, err := a.telemetry(e.Stream[len(telemPrefix):])
	if err != nil {
		return err
	}
	// Only a telemetry event moves the version of the twin's telemetry
	// stream, which the per-twin telemetry API expects.
	rec.Version = e.Position
	rec.add(p.Component, p.MessageID, e.Time, p.SourceTime, p.Body)
	return nil
}

// applyTelemetryBatch records the points of a telemetry.batch event in
// order, each as its own telemetry event would (but for the stream version,
// which batches do not move): the twins' last-known telemetry and recent
// message ids end the same either way.
func (a *applier) applyTelemetryBatch(e *event.Event) error {
	if e.SchemaVersion != TelemetryBatchSchemaVersion {
		return fmt.Errorf("%s at %d: unknown schema version %d", e.Type, e.Position, e.SchemaVersion)
	}
	err := DecodeTelemetryBatchRaw(e.Payload, func(_ int, p *RawTelemetryPoint) error {
		rec, ok := a.telem[string(p.Twin)]
		if !ok {
			var err error
			if rec, err = a.telemetry(string(p.Twin)); err != nil {
				return err
			}
		}
		// The point aliases the event's payload: copy what is kept, or one
		// point would keep the whole batch alive. The message id gets its
		// own copy: the twin's recent ids keep it long after the body is
		// replaced, and a shared allocation would keep 32 bodies per twin
		// alive. Source time and body share one; the string views its
		// bytes, which nothing writes after this.
		buf := make([]byte, 0, len(p.SourceTime)+len(p.Body))
		buf = append(append(buf, p.SourceTime...), p.Body...)
		st := buf[:len(p.SourceTime)]
		rec.add(string(p.Component), string(p.MessageID), e.Time,
			unsafe.String(unsafe.SliceData(st), len(st)), buf[len(st):])
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s at %d: %w", e.Type, e.Position, err)
	}
	return nil
}

// telemetry returns the record of twin that this transaction may change:
// a copy of the current one, or a new one.
func (a *applier) telemetry(twin string) (*TelemetryRecord, error) {
	if rec, ok := a.telem[twin]; ok {
		return rec, nil
	}
	if a.telemTx == nil {
		a.telemTx = a.g.telem.Txn()
		a.telem = map[string]*TelemetryRecord{}
	}
	// The record, its ids and its root's last message in one allocation.
	blk := &struct {
		rec    TelemetryRecord
		recent [RecentMessageIDs]string
		last   [1]TelemetryValue
	}{}
	rec := &blk.rec
	rec.Twin = twin
	rec.Recent, rec.Last = blk.recent[:0], blk.last[:0]
	if old, ok := a.telemTx.Get(twin); ok {
		rec.Twin, rec.Version = old.Twin, old.Version
		rec.Recent = append(rec.Recent, old.Recent...)
		rec.Last = append(rec.Last, old.Last...)
	}
	a.telemTx.Put(rec.Twin, rec)
	a.telem[rec.Twin] = rec
	return rec, nil
}

// add records one message in a record owned by the transaction.
func (rec *TelemetryRecord) add(component, messageID string, time int64, sourceTime string, body []byte) {
	if len(rec.Recent) >= RecentMessageIDs {
		keep := rec.Recent[len(rec.Recent)-RecentMessageIDs+1:]
		switch {
		case cap(keep) > len(keep):
			// Room after the ids: the window moves on.
			rec.Recent = keep
		case rec.recent != nil:
			// At the end of the window's array: back to its start, once
			// every RecentMessageIDs ids.
			rec.Recent = rec.recent[:copy(rec.recent[:cap(rec.recent)], keep)]
		case rec.shifts < windowAfter:
			rec.shifts++
			rec.Recent = rec.Recent[:copy(rec.Recent, keep)]
		default:
			// Many ids in this transaction: from now on, a window on an
			// array of twice the ids kept.
			rec.recent = make([]string, 0, 2*RecentMessageIDs)
			rec.Recent = append(rec.recent, keep...)
		}
	}
	rec.Recent = append(rec.Recent, messageID)
	v := TelemetryValue{Component: component, MessageID: messageID, Time: time, SourceTime: sourceTime, Body: body}
	i, found := slices.BinarySearchFunc(rec.Last, component, func(l TelemetryValue, c string) int { return strings.Compare(l.Component, c) })
	if found {
		rec.Last[i] = v
	} else {
		rec.Last = slices.Insert(rec.Last, i, v)
	}
}
