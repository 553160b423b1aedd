// Package bulk reads the bulk-import formats of Azure Digital Twins: the
// Import Jobs NDJSON format (section marker lines, then one object per line)
// and the ADT Explorer graph JSON format. Both decode to the same sequence
// of Items — models, then twins, then relationships — which the importer
// sends through the ordinary write path, so every imported object is
// validated like any other write.
package bulk

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Kind is what an Item holds.
type Kind uint8

// Item kinds.
const (
	Model Kind = iota + 1
	Twin
	Relationship
)

func (k Kind) String() string {
	switch k {
	case Model:
		return "model"
	case Twin:
		return "twin"
	case Relationship:
		return "relationship"
	}
	return "unknown"
}

// Item is one object of an import file.
type Item struct {
	Kind Kind
	// Line is the 1-based line in an NDJSON file, or the 1-based index
	// within its array in an Explorer file.
	Line int
	// ID is the model's @id, the twin's $dtId or the relationship's
	// $relationshipId.
	ID string
	// Source is the relationship's source twin ($sourceId, or $dtId in the
	// NDJSON format).
	Source string
	// Data is the object as it should be sent: a model document, a twin
	// body, or a relationship body with $sourceId set.
	Data json.RawMessage
}

// File is a decoded import file.
type File struct {
	// Format is "ndjson" or "explorer".
	Format string
	Items  []Item
}

// Count returns how many items of kind the file holds.
func (f *File) Count(kind Kind) int {
	n := 0
	for i := range f.Items {
		if f.Items[i].Kind == kind {
			n++
		}
	}
	return n
}

// ErrFormat is returned for a file in neither format.
var ErrFormat = errors.New("bulk: not an ADT import file")

// MaxLine bounds one NDJSON line (ADT's largest object is a 1 MB model).
const MaxLine = 4 << 20

// Decode reads an import file, detecting its format.
func Decode(r io.Reader) (*File, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(4096)
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	if bytes.HasPrefix(trimmed, []byte(`{"Section"`)) || bytes.HasPrefix(trimmed, []byte(`{ "Section"`)) {
		return decodeNDJSON(br)
	}
	if bytes.HasPrefix(trimmed, []byte("{")) {
		return decodeExplorer(br)
	}
	return nil, ErrFormat
}

type idFields struct {
	ID      string `json:"@id"`
	DtID    string `json:"$dtId"`
	RelID   string `json:"$relationshipId"`
	Source  string `json:"$sourceId"`
	Target  string `json:"$targetId"`
	RelName string `json:"$relationshipName"`
}

func decodeNDJSON(br *bufio.Reader) (*File, error) {
	f := &File{Format: "ndjson"}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), MaxLine)
	section := ""
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		}
		if len(b) == 0 {
			continue
		}
		var marker struct {
			Section *string `json:"Section"`
		}
		if err := json.Unmarshal(b, &marker); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if marker.Section != nil {
			switch *marker.Section {
			case "Header", "Models", "Twins", "Relationships":
				section = *marker.Section
			default:
				return nil, fmt.Errorf("line %d: unknown section %q", line, *marker.Section)
			}
			continue
		}
		var ids idFields
		json.Unmarshal(b, &ids)
		data := json.RawMessage(append([]byte(nil), b...))
		switch section {
		case "Header":
			continue
		case "Models":
			f.Items = append(f.Items, Item{Kind: Model, Line: line, ID: ids.ID, Data: data})
		case "Twins":
			f.Items = append(f.Items, Item{Kind: Twin, Line: line, ID: ids.DtID, Data: data})
		case "Relationships":
			// In this format the source is $dtId.
			src := ids.Source
			if src == "" {
				src = ids.DtID
			}
			f.Items = append(f.Items, Item{Kind: Relationship, Line: line, ID: ids.RelID, Source: src, Data: relBody(data, src)})
		default:
			return nil, fmt.Errorf("line %d: object before any section marker", line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return f, nil
}

// relBody returns a relationship body carrying $sourceId and without $dtId.
func relBody(data json.RawMessage, src string) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return data
	}
	if _, ok := m["$dtId"]; !ok {
		if _, ok := m["$sourceId"]; ok {
			return data
		}
	}
	delete(m, "$dtId")
	m["$sourceId"], _ = json.Marshal(src)
	out, err := json.Marshal(m)
	if err != nil {
		return data
	}
	return out
}

func decodeExplorer(r io.Reader) (*File, error) {
	var doc struct {
		Graph *struct {
			Twins []json.RawMessage `json:"digitalTwins"`
			Rels  []json.RawMessage `json:"relationships"`
		} `json:"digitalTwinsGraph"`
		Models []json.RawMessage `json:"digitalTwinsModels"`
	}
	dec := json.NewDecoder(r)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode explorer graph: %w", err)
	}
	if doc.Graph == nil && doc.Models == nil {
		return nil, fmt.Errorf("%w: no digitalTwinsGraph or digitalTwinsModels", ErrFormat)
	}
	f := &File{Format: "explorer"}
	for i, m := range doc.Models {
		var ids idFields
		json.Unmarshal(m, &ids)
		f.Items = append(f.Items, Item{Kind: Model, Line: i + 1, ID: ids.ID, Data: m})
	}
	if doc.Graph != nil {
		for i, t := range doc.Graph.Twins {
			var ids idFields
			json.Unmarshal(t, &ids)
			f.Items = append(f.Items, Item{Kind: Twin, Line: i + 1, ID: ids.DtID, Data: t})
		}
		for i, rl := range doc.Graph.Rels {
			var ids idFields
			json.Unmarshal(rl, &ids)
			f.Items = append(f.Items, Item{Kind: Relationship, Line: i + 1, ID: ids.RelID, Source: ids.Source, Data: rl})
		}
	}
	return f, nil
}
