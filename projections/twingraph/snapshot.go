package twingraph

import (
	"iter"

	"github.com/hashicorp/go-memdb"

	"github.com/twinlog/twinlog/schemas/dtdl"
)

// Snapshot is a consistent, read-only view of the graph at one position.
// Taking one costs nothing (the graph publishes one per applied batch), and
// it is safe for concurrent use. Objects it returns are immutable and must
// not be modified.
type Snapshot struct {
	db            *memdb.MemDB // the models and tombstones as of pos; txn reads it
	txn           *memdb.Txn
	twins         twinTrees
	telem         btree[string, *TelemetryRecord]
	reg           *dtdl.Registry
	pos           uint64
	modelsVersion uint64
	owner         uint32 // the graph's id (Twin.owner)
	gen           uint64 // the graph's last transaction (Twin.gen)
}

// Snapshot returns a view of the graph as of the last applied batch.
func (g *Graph) Snapshot() *Snapshot {
	return g.cur.Load()
}

// Fork returns a new graph holding the snapshot's state, which applies
// events on its own: it shares the snapshot's structure (every tree is
// persistent, and a write copies what it changes), so forking costs
// nothing whatever the graph's size, and neither the snapshot nor the graph
// it came from sees the fork's writes.
func (s *Snapshot) Fork() *Graph {
	g := &Graph{id: newGraphID(), gen: s.gen, db: s.db.Snapshot(), twins: s.twins, telem: s.telem, reg: s.reg, modelsVersion: s.modelsVersion,
		pos: s.pos, names: map[string]string{}}
	g.publish()
	return g
}

// Position returns the log position the snapshot reflects.
func (s *Snapshot) Position() uint64 { return s.pos }

// Models returns the model registry as of the snapshot.
func (s *Snapshot) Models() *dtdl.Registry { return s.reg }

// ModelsVersion returns the version of the "models" stream.
func (s *Snapshot) ModelsVersion() uint64 { return s.modelsVersion }

// Model returns the record of an uploaded model.
func (s *Snapshot) Model(id string) (*ModelRecord, bool) {
	raw, err := s.txn.First(tableModels, "id", id)
	if err != nil || raw == nil {
		return nil, false
	}
	return raw.(*ModelRecord), true
}

// ModelRecords returns every uploaded model's record in id order.
func (s *Snapshot) ModelRecords() iter.Seq[*ModelRecord] {
	return func(yield func(*ModelRecord) bool) {
		it, err := s.txn.Get(tableModels, "id")
		if err != nil {
			return
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			if !yield(raw.(*ModelRecord)) {
				return
			}
		}
	}
}

// Twin returns the twin with the given id.
func (s *Snapshot) Twin(id string) (*Twin, bool) {
	t := s.twins.get(id)
	return t, t != nil
}

// TwinSet returns an identity of the snapshot's twins and their models: two
// snapshots with equal TwinSets hold the same twin ids with the same
// models (property changes keep it; a create, a delete or a model change
// gives a new one). Callers may cache what they derive from twin ids and
// models under it.
func (s *Snapshot) TwinSet() any { return s.twins.byModel.root }

// StreamVersion returns the version of the twin's stream: the existing
// twin's Version, a deleted twin's last position, or 0 (eventlog.NoStream).
func (s *Snapshot) StreamVersion(id string) uint64 {
	if t, ok := s.Twin(id); ok {
		return t.Version
	}
	raw, err := s.txn.First(tableTombs, "id", id)
	if err != nil || raw == nil {
		return 0
	}
	return raw.(*tomb).Version
}

// Twins iterates over every twin in id order.
func (s *Snapshot) Twins() iter.Seq[*Twin] {
	return s.twins.all()
}

// TwinsOfModel iterates over the twins whose model is model or, unless
// exact, a model that extends it (IS_OF_MODEL). Twins are grouped by model,
// each group in id order.
func (s *Snapshot) TwinsOfModel(model string, exact bool) iter.Seq[*Twin] {
	return func(yield func(*Twin) bool) {
		models := []string{model}
		if !exact {
			models = append(models, s.reg.Descendants(model)...)
		}
		for _, m := range models {
			for t := range s.twins.ofModel(m) {
				if !yield(t) {
					return
				}
			}
		}
	}
}

// Relationship returns the relationship id of twin src.
func (s *Snapshot) Relationship(src, id string) (*Relationship, bool) {
	t, ok := s.Twin(src)
	if !ok {
		return nil, false
	}
	return t.Outgoing(id)
}

// Outgoing iterates over the relationships of src in id order, only those
// named name unless name is "".
func (s *Snapshot) Outgoing(src, name string) iter.Seq[*Relationship] {
	return func(yield func(*Relationship) bool) {
		t, ok := s.Twin(src)
		if !ok {
			return
		}
		for _, r := range t.Out {
			if name != "" && r.Name != name {
				continue
			}
			if !yield(r) {
				return
			}
		}
	}
}

// Incoming iterates over the relationships whose target is target, ordered
// by source and id.
func (s *Snapshot) Incoming(target string) iter.Seq[*Relationship] {
	return func(yield func(*Relationship) bool) {
		t, ok := s.Twin(target)
		if !ok {
			return
		}
		for _, r := range t.In {
			if !yield(r) {
				return
			}
		}
	}
}

// Relationships iterates over every relationship, ordered by source and id.
func (s *Snapshot) Relationships() iter.Seq[*Relationship] {
	return func(yield func(*Relationship) bool) {
		for t := range s.Twins() {
			for _, r := range t.Out {
				if !yield(r) {
					return
				}
			}
		}
	}
}

// HasRelationships reports whether twin id has any outgoing or incoming
// relationship.
func (s *Snapshot) HasRelationships(id string) bool {
	t, ok := s.Twin(id)
	return ok && len(t.Out)+len(t.In) > 0
}

// Telemetry returns the twin's telemetry record.
func (s *Snapshot) Telemetry(twin string) (*TelemetryRecord, bool) {
	return s.telem.Get(twin)
}

// telemetryRecords returns every telemetry record in twin order.
func (s *Snapshot) telemetryRecords() iter.Seq[*TelemetryRecord] {
	return func(yield func(*TelemetryRecord) bool) {
		s.telem.Ascend("", true, func(_ string, r *TelemetryRecord) bool { return yield(r) })
	}
}
