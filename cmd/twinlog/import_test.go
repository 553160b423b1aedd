package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/bulk"
	"github.com/twinlog/twinlog/engine/node"
)

const scenarios = "../../../shared/testdata/scenarios"

func startNode(t *testing.T) *node.Node {
	t.Helper()
	n, err := node.Open(context.Background(), node.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Token: "test-token"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && err != http.ErrServerClosed {
			t.Errorf("serve: %v", err)
		}
	})
	return n
}

// userFields drops the server-made members ($etag, $metadata timestamps)
// and keeps what an import must reproduce.
func userFields(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		switch k {
		case "$etag", "$metadata":
			continue
		}
		if obj, ok := v.(map[string]any); ok {
			v = userFields(obj)
		}
		out[k] = v
	}
	if md, ok := m["$metadata"].(map[string]any); ok {
		if model, ok := md["$model"]; ok {
			out["$model"] = model
		}
	}
	return out
}

func TestImportScenarios(t *testing.T) {
	if _, err := os.Stat(scenarios); err != nil {
		t.Skipf("scenario testdata not found at %s", scenarios)
	}
	eg := filepath.Join(scenarios, "getting-started/energy-grid-example")
	egModels, _ := filepath.Glob(filepath.Join(eg, "*.json"))
	var egModelFiles []string
	for _, f := range egModels {
		if !strings.HasSuffix(f, ".graph.json") && !strings.Contains(f, "BulkImport") {
			egModelFiles = append(egModelFiles, f)
		}
	}
	tests := []struct {
		file   string
		models []string
	}{
		{"adt-explorer-examples/buildingScenario.graph.json", []string{filepath.Join(scenarios, "adt-explorer-examples/models")}},
		{"adt-explorer-examples/distributionGrid.graph.json", []string{filepath.Join(scenarios, "adt-explorer-examples/models")}},
		{"adt-explorer-examples/nationalGrid.graph.json", []string{filepath.Join(scenarios, "adt-explorer-examples/models")}},
		{"getting-started/energy-grid-example/buildingScenario.graph.json", egModelFiles},
		{"getting-started/energy-grid-example/distributionGrid.graph.json", egModelFiles},
		{"getting-started/energy-grid-example/nationalGrid.graph.json", egModelFiles},
		{"getting-started/energy-grid-example/distributionGridBulkImport.json", nil},
		{"getting-started/basic-home-example/import.json", nil},
		{"adt-sample-app/buildingScenario.graph.json", []string{filepath.Join(scenarios, "adt-sample-app/models")}},
		{"adt-sample-app/setupBuildingScenario.graph.json", []string{filepath.Join(scenarios, "adt-sample-app/models")}},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.file, "/", "_"), func(t *testing.T) {
			n := startNode(t)
			path := filepath.Join(scenarios, tc.file)
			args := []string{"import", "--server", n.URL(), "--token", n.Token(), path}
			if len(tc.models) > 0 {
				args = append(args, "--models", strings.Join(tc.models, ","))
			}
			out, err := runCLI(t, args...)
			if err != nil {
				t.Fatalf("import: %v\n%s", err, out)
			}
			fh, _ := os.Open(path)
			f, err := bulk.Decode(fh)
			fh.Close()
			if err != nil {
				t.Fatal(err)
			}
			c := &apiClient{base: n.URL(), token: n.Token(), http: http.DefaultClient}
			ctx := context.Background()
			for _, it := range f.Items {
				var want, got map[string]any
				json.Unmarshal(it.Data, &want)
				switch it.Kind {
				case bulk.Twin:
					if err := c.do(ctx, "GET", "/digitaltwins/"+escapePath(it.ID), nil, nil, &got); err != nil {
						t.Fatalf("twin %s: %v", it.ID, err)
					}
				case bulk.Relationship:
					if err := c.do(ctx, "GET", "/digitaltwins/"+escapePath(it.Source)+"/relationships/"+escapePath(it.ID), nil, nil, &got); err != nil {
						t.Fatalf("relationship %s: %v", it.ID, err)
					}
				default:
					continue
				}
				if w, g := userFields(want), userFields(got); !reflect.DeepEqual(w, g) {
					t.Fatalf("%s %s read back differently:\n got  %v\n want %v", it.Kind, it.ID, g, w)
				}
			}
		})
	}
}

func TestImportReportsRejects(t *testing.T) {
	n := startNode(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.ndjson")
	content := `{"Section": "Header"}
{"fileVersion": "1.0.0"}
{"Section": "Models"}
{"@id":"dtmi:ex:Room;1","@context":"dtmi:dtdl:context;3","@type":"Interface","contents":[{"@type":"Property","name":"t","schema":"double"}]}
{"Section": "Twins"}
{"$dtId":"ok","$metadata":{"$model":"dtmi:ex:Room;1"},"t":1}
{"$dtId":"wrong-type","$metadata":{"$model":"dtmi:ex:Room;1"},"t":"hot"}
{"$dtId":"no-model","$metadata":{"$model":"dtmi:ex:Nope;1"}}
`
	os.WriteFile(file, []byte(content), 0o644)
	out, err := runCLI(t, "import", "--server", n.URL(), "--token", n.Token(), file)
	if err == nil {
		t.Fatalf("import with bad lines succeeded:\n%s", out)
	}
	if testing.Verbose() {
		t.Log(out)
	}
	for _, want := range []string{"imported 1/1 models, 1/3 twins", "line 7: twin wrong-type", "line 8: twin no-model"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
}
