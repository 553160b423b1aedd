package dtdl

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func loadSet(t testing.TB, name string) []Document {
	dir := filepath.Join(testdataDir, name)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("ontology %s not found at %s (shared testdata missing): %v", name, dir, err)
	}
	docs, err := LoadDocuments([]string{dir})
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return docs
}

func diagSummary(err error, n int) []string {
	var ve *ValidationError
	var out []string
	if errors.As(err, &ve) {
		for i, d := range ve.Diagnostics {
			if i == n {
				break
			}
			out = append(out, d.String())
		}
	}
	return out
}

// TestOntologies loads every interface of the real ontologies as one batch.
func TestOntologies(t *testing.T) {
	tests := []struct {
		name  string
		dir   string
		roots int
	}{
		{name: "building", dir: "building", roots: 768},
		{name: "energygrid", dir: "energygrid", roots: 113},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := loadSet(t, tt.dir)
			reg, itfs, err := NewRegistry(Options{}).Add(docs)
			if err != nil {
				t.Fatalf("add: %v\n%v", err, diagSummary(err, 20))
			}
			roots := 0
			for _, itf := range itfs {
				if reg.models[itf.ID] != nil {
					roots++
				}
			}
			if len(docs) != tt.roots {
				t.Fatalf("documents=%d, want %d", len(docs), tt.roots)
			}
			if roots < tt.roots {
				t.Fatalf("interfaces=%d, want at least %d", roots, tt.roots)
			}
		})
	}
}

// TestPnPModels loads the IoT Plug and Play models: the whole set in one batch
// reports duplicateDefinition (several versions reuse nested ids), and each
// file loads on its own with the others available for references.
func TestPnPModels(t *testing.T) {
	docs := loadSet(t, "pnp-models")
	_, err := Resolve(docs, nil, Options{})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("one batch: err=%v, want duplicateDefinition diagnostics", err)
	}
	for _, d := range ve.Diagnostics {
		if d.Code != "duplicateDefinition" {
			t.Errorf("one batch: unexpected diagnostic %s", d)
		}
	}
	// Each file alone, with the other files' models available for references.
	known := map[string]*Interface{}
	var pending []Document
	for _, d := range docs {
		itfs, err := Resolve([]Document{d}, nil, Options{})
		if err != nil {
			pending = append(pending, d)
			continue
		}
		for _, itf := range itfs {
			if known[itf.ID] == nil {
				known[itf.ID] = itf
			}
		}
	}
	for progress := true; progress; {
		progress = false
		var still []Document
		for _, d := range pending {
			itfs, err := Resolve([]Document{d}, known, Options{})
			if err != nil {
				still = append(still, d)
				continue
			}
			progress = true
			for _, itf := range itfs {
				if known[itf.ID] == nil {
					known[itf.ID] = itf
				}
			}
		}
		pending = still
	}
	failed := len(pending)
	for i, d := range pending {
		if i == 10 {
			break
		}
		_, err := Resolve([]Document{d}, known, Options{})
		t.Errorf("%s: %v", d.Name, diagSummary(err, 3))
	}
	if failed > 0 {
		t.Errorf("%d of %d pnp models failed to load", failed, len(docs))
	}
}
