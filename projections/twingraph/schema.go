package twingraph

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// schema returns the memdb schema. Indexes are few and keyed by compact
// byte strings, since each index entry costs about half a kilobyte:
//
//	twins:     id (ID), model (Model, non-unique)
//	rels:      id (Source, ID; a prefix lookup by Source lists outgoing), target (non-unique)
//	models:    id
//	tombs:     id (deleted twins' stream versions)
//	telemetry: id (Twin)
//
// There is no global index by relationship name: lookups by name go from the
// source (Outgoing) and filter, which avoids ~2M more index entries in the
// benchmark graph.
func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableTwins: {Name: tableTwins, Indexes: map[string]*memdb.IndexSchema{
			"id":    {Name: "id", Unique: true, Indexer: strIndex(func(o any) string { return o.(*Twin).ID })},
			"model": {Name: "model", Indexer: strIndex(func(o any) string { return o.(*Twin).Model })},
		}},
		tableRels: {Name: tableRels, Indexes: map[string]*memdb.IndexSchema{
			"id":     {Name: "id", Unique: true, Indexer: relIDIndex{}},
			"target": {Name: "target", Indexer: strIndex(func(o any) string { return o.(*Relationship).Target })},
		}},
		tableModels: {Name: tableModels, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: strIndex(func(o any) string { return o.(*ModelRecord).ID })},
		}},
		tableTombs: {Name: tableTombs, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: strIndex(func(o any) string { return o.(*tomb).ID })},
		}},
		tableTelemetry: {Name: tableTelemetry, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: strIndex(func(o any) string { return o.(*TelemetryRecord).Twin })},
		}},
	}}
}

var errIndexArgs = errors.New("twingraph: bad index arguments")

// strIndex indexes a string field, NUL-terminated so that no key is a
// prefix of another. It avoids the reflection of memdb.StringFieldIndex.
type strIndex func(o any) string

func (f strIndex) FromObject(o any) (bool, []byte, error) {
	s := f(o)
	b := make([]byte, len(s)+1)
	copy(b, s)
	return true, b, nil
}

func (f strIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, errIndexArgs
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, errIndexArgs
	}
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b, nil
}

// relIDIndex keys a relationship by source and id: "source\x00id\x00". Its
// prefix form (one argument, the source) lists a twin's outgoing
// relationships.
type relIDIndex struct{}

func relKey(src, id string) []byte {
	b := make([]byte, 0, len(src)+len(id)+2)
	b = append(b, src...)
	b = append(b, 0)
	b = append(b, id...)
	return append(b, 0)
}

func (relIDIndex) FromObject(o any) (bool, []byte, error) {
	r := o.(*Relationship)
	return true, relKey(r.Source, r.ID), nil
}

func (relIDIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 2 {
		return nil, errIndexArgs
	}
	src, ok1 := args[0].(string)
	id, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return nil, errIndexArgs
	}
	return relKey(src, id), nil
}

func (relIDIndex) PrefixFromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, errIndexArgs
	}
	src, ok := args[0].(string)
	if !ok {
		return nil, errIndexArgs
	}
	return append([]byte(src), 0), nil
}

// TopLevelID returns the "@id" of a DTDL interface document.
func TopLevelID(doc []byte) (string, error) {
	var head struct {
		ID *string `json:"@id"`
	}
	if err := json.Unmarshal(doc, &head); err != nil {
		return "", fmt.Errorf("model document: %w", err)
	}
	if head.ID == nil {
		return "", errors.New("model document has no @id")
	}
	return *head.ID, nil
}
