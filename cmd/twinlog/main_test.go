package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, &out, &out)
	return out.String(), err
}

func TestVersion(t *testing.T) {
	out, err := runCLI(t, "version")
	if err != nil || !strings.HasPrefix(out, "twinlog ") {
		t.Fatalf("version: %q, %v", out, err)
	}
}

func TestModelsValidate(t *testing.T) {
	dir := t.TempDir()
	good := `{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Room;1","@type":"Interface",
		"contents":[{"@type":"Property","name":"temperature","schema":"double"}]}`
	bad := `{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Bad;1","@type":"Interface",
		"contents":[{"@type":"Property","name":"t","schema":"double"},{"@type":"Property","name":"t","schema":"string"}]}`
	os.WriteFile(filepath.Join(dir, "room.json"), []byte(good), 0o644)
	if out, err := runCLI(t, "models", "validate", dir); err != nil {
		t.Fatalf("valid models: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte(bad), 0o644)
	out, err := runCLI(t, "models", "validate", dir)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("invalid models: err %v, want exit 1", err)
	}
	if !strings.Contains(out, "bad.json") || !strings.Contains(out, "dtmi:ex:Bad;1") {
		t.Fatalf("output does not name the file and DTMI:\n%s", out)
	}
}
