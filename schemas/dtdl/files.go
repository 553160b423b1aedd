package dtdl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ValidateFiles is the offline validation behind `twinlog models validate`:
// it reads the given files and, recursively, every *.json file in the given
// directories, parses and resolves them all as one batch, and returns the
// diagnostics, each naming its file. No diagnostics means the models are
// valid. The error reports only I/O problems.
func ValidateFiles(paths []string) ([]Diagnostic, error) {
	docs, err := LoadDocuments(paths)
	if err != nil {
		return nil, err
	}
	if _, err := Resolve(docs, nil, Options{}); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return ve.Diagnostics, nil
		}
		return nil, err
	}
	return nil, nil
}

// LoadDocuments reads the given files and every *.json file under the given
// directories, sorted by path within each directory.
func LoadDocuments(paths []string) ([]Document, error) {
	var docs []Document
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("load models: %w", err)
		}
		if !info.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("load models: %w", err)
			}
			docs = append(docs, Document{Name: p, Data: data})
			continue
		}
		var files []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.EqualFold(filepath.Ext(path), ".json") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("load models in %s: %w", p, err)
		}
		sort.Strings(files)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("load models: %w", err)
			}
			docs = append(docs, Document{Name: f, Data: data})
		}
	}
	return docs, nil
}
