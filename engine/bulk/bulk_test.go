package bulk

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const scenarios = "../../../shared/testdata/scenarios"

func TestScenarioFiles(t *testing.T) {
	if _, err := os.Stat(scenarios); err != nil {
		t.Skipf("scenario testdata not found at %s", scenarios)
	}
	tests := []struct {
		file                string
		format              string
		models, twins, rels int
	}{
		{"getting-started/energy-grid-example/distributionGridBulkImport.json", "ndjson", 13, 49, 50},
		{"getting-started/basic-home-example/import.json", "explorer", 4, 12, 11},
		{"adt-explorer-examples/distributionGrid.graph.json", "explorer", 0, 49, 50},
		{"adt-sample-app/setupBuildingScenario.graph.json", "explorer", 0, 3, 2},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			fh, err := os.Open(filepath.Join(scenarios, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			f, err := Decode(fh)
			if err != nil {
				t.Fatal(err)
			}
			if f.Format != tc.format {
				t.Fatalf("format %s, want %s", f.Format, tc.format)
			}
			if m, tw, r := f.Count(Model), f.Count(Twin), f.Count(Relationship); m != tc.models || tw != tc.twins || r != tc.rels {
				t.Fatalf("models/twins/rels = %d/%d/%d, want %d/%d/%d", m, tw, r, tc.models, tc.twins, tc.rels)
			}
			for _, it := range f.Items {
				if it.ID == "" {
					t.Fatalf("%s at %d has no id", it.Kind, it.Line)
				}
				if it.Kind == Relationship {
					var rel map[string]any
					json.Unmarshal(it.Data, &rel)
					if it.Source == "" || rel["$sourceId"] != it.Source {
						t.Fatalf("relationship %s: source %q, body %v", it.ID, it.Source, rel)
					}
				}
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"array", "[1,2]"},
		{"bad-section", `{"Section":"Nope"}`},
		{"before-section", "{\"Section\":\"Header\"}\n{}\n{\"Section\":\"Twins\"}\nnot json"},
		{"explorer-no-graph", `{"foo":1}`},
	}
	for _, tc := range tests {
		if _, err := Decode(strings.NewReader(tc.in)); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestNDJSONRelationshipSource(t *testing.T) {
	in := "{\"Section\": \"Header\"}\n{\"fileVersion\":\"1.0.0\"}\n{\"Section\": \"Relationships\"}\n" +
		`{"$dtId":"a","$relationshipId":"r","$targetId":"b","$relationshipName":"feeds","x":1}` + "\n"
	f, err := Decode(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var rel map[string]any
	json.Unmarshal(f.Items[0].Data, &rel)
	if rel["$sourceId"] != "a" || rel["$dtId"] != nil || rel["x"] != 1.0 || f.Items[0].Line != 4 {
		t.Fatalf("relationship = %v at line %d", rel, f.Items[0].Line)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("{\"Section\": \"Header\"}\n{}\n{\"Section\": \"Twins\"}\n{\"$dtId\":\"x\"}\n"))
	f.Add([]byte(`{"digitalTwinsGraph":{"digitalTwins":[{"$dtId":"a"}],"relationships":[]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Decode(strings.NewReader(string(b)))
		if err == nil && file == nil {
			t.Fatal("nil file without error")
		}
	})
}
