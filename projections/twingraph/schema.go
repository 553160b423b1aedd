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
//	models:    id
//	tombs:     id (deleted twins' stream versions)
//
// Telemetry records are not memdb objects: they are in a B+tree by twin
// (Graph.telem), updated once per twin per applied batch.
//
// Relationships are not memdb objects: each twin holds its outgoing
// relationships sorted by id and its incoming ones sorted by source and id
// (adjacency lists, copied on write). Lookups by source, by target and by
// (source, id) start from the twin; by name, they filter a twin's list.
// That saves two index entries (~850 bytes) per relationship: about 1.7 GB
// for the 2 million relationships of the benchmark graph.
//
// Twins are not memdb objects either; see twinTrees.
func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableModels: {Name: tableModels, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: strIndex(func(o any) string { return o.(*ModelRecord).ID })},
		}},
		tableTombs: {Name: tableTombs, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: strIndex(func(o any) string { return o.(*tomb).ID })},
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
