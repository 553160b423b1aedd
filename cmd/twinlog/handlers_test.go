package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/wasm-handlers/handlertest"
)

func TestParseTrigger(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string][]string
		err      bool
	}{
		{"events only", "events=telemetry,twin.patched", map[string][]string{"events": {"telemetry", "twin.patched"}}, false},
		{"model ids with semicolons", "events=telemetry;models=dtmi:a:B;1,dtmi:a:C;2;properties=x",
			map[string][]string{"events": {"telemetry"}, "models": {"dtmi:a:B;1", "dtmi:a:C;2"}, "properties": {"x"}}, false},
		{"default event", "relationships=contains", map[string][]string{"events": {"telemetry"}, "relationships": {"contains"}}, false},
		{"unknown key", "color=red", nil, true},
		{"no value", "events", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTrigger(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("parseTrigger(%q) error %v, want error %v", tt.in, err, tt.err)
			}
			if err != nil {
				return
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tt.want)
			if string(g) != string(w) {
				t.Fatalf("parseTrigger(%q) = %s, want %s", tt.in, g, w)
			}
		})
	}
}

func TestHandlersCLI(t *testing.T) {
	dir := t.TempDir()
	files, err := handlertest.Build(dir, map[string]string{"trivial": handlertest.Examples["trivial"]})
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t)
	conn := []string{"--server", n.URL(), "--token", "test-token"}
	cli := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, append(append([]string{"handlers"}, args...), conn...)...)
		if err != nil {
			t.Fatalf("twinlog handlers %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	out := cli("deploy", files["trivial"], "--name", "trivial", "--version", "1",
		"--trigger", "events=telemetry;models=dtmi:ex:Sensor;1", "--timeout-ms", "500", "--grant", "writer@model dtmi:ex:Sensor;1")
	if !strings.HasPrefix(out, "deployed trivial version 1 at position ") {
		t.Fatalf("deploy: %q", out)
	}
	man := filepath.Join(dir, "manifest.json")
	os.WriteFile(man, []byte(`{"name":"trivial","triggers":[{"events":["twin.patched"]}],"config":{"x":1},"grants":[{"role":"reader","scope":{"kind":"instance"}}]}`), 0o644)
	if out := cli("deploy", files["trivial"], "--manifest", man, "--version", "2"); !strings.Contains(out, "version 2") {
		t.Fatalf("roll: %q", out)
	}

	// The handler's grants are those of its current manifest.
	grants := func() string {
		out, err := runCLI(t, append([]string{"grants", "list"}, conn...)...)
		if err != nil {
			t.Fatalf("grants list: %v\n%s", err, out)
		}
		return out
	}
	if out := grants(); !strings.Contains(out, "handler.trivial.0") || !strings.Contains(out, "handler:trivial") ||
		!strings.Contains(out, "reader") || strings.Contains(out, "dtmi:ex:Sensor;1") {
		t.Fatalf("grants after the roll:\n%s", out)
	}

	out = cli("list")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") ||
		!strings.HasPrefix(lines[1], "trivial") || !strings.Contains(lines[1], " 2 ") || !strings.Contains(lines[1], "active") {
		t.Fatalf("list:\n%s", out)
	}

	var st struct {
		Name, Version, State string
		Manifest             struct {
			Triggers []struct{ Events []string }
			Config   struct{ X int }
		}
	}
	if err := json.Unmarshal([]byte(cli("get", "trivial")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Version != "2" || st.State != "active" || len(st.Manifest.Triggers) != 1 || st.Manifest.Triggers[0].Events[0] != "twin.patched" ||
		st.Manifest.Config.X != 1 {
		t.Fatalf("get: %+v", st)
	}

	cli("disable", "trivial")
	if out := cli("list"); !strings.Contains(out, "disabled") {
		t.Fatalf("list after disable:\n%s", out)
	}
	cli("delete", "trivial")
	if out := cli("list"); strings.Contains(out, "trivial") {
		t.Fatalf("list after delete:\n%s", out)
	}
	if out := grants(); strings.Contains(out, "handler:trivial") {
		t.Fatalf("grants after delete:\n%s", out)
	}

	// Errors reach the user with the server's message.
	if _, err := runCLI(t, append([]string{"handlers", "get", "nope"}, conn...)...); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("get unknown: %v", err)
	}
	bad := filepath.Join(dir, "bad.wasm")
	os.WriteFile(bad, []byte("not a module"), 0o644)
	if _, err := runCLI(t, append([]string{"handlers", "deploy", bad, "--name", "bad"}, conn...)...); err == nil || !strings.Contains(err.Error(), "InvalidModule") && !strings.Contains(err.Error(), "valid") {
		t.Fatalf("deploy bad module: %v", err)
	}
	if _, err := runCLI(t, append([]string{"handlers", "deploy", files["trivial"], "--name", "x", "--trigger", "color=red"}, conn...)...); err == nil {
		t.Fatal("deploy with a bad trigger: no error")
	}
}
