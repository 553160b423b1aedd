// Package handlertest builds handler modules for tests: Go packages compiled
// with the running toolchain for GOOS=wasip1 GOARCH=wasm, so `go test` works
// on a fresh machine with nothing but Go installed.
package handlertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// Module is the import path of this repository's Go module.
const Module = "github.com/twinlog/twinlog"

// Examples maps the example handlers' names to their packages.
var Examples = map[string]string{
	"comfort": Module + "/wasm-handlers/examples/comfort",
	"average": Module + "/wasm-handlers/examples/average",
	"alert":   Module + "/wasm-handlers/examples/alert",
	"trivial": Module + "/wasm-handlers/examples/trivial",
	"hostile": Module + "/wasm-handlers/testdata/hostile",
}

// GoTool returns the go command of the toolchain running the test.
func GoTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// Build compiles each named package (name → import path) to dir/<name>.wasm,
// two at a time, and returns the files by name.
func Build(dir string, pkgs map[string]string) (map[string]string, error) {
	out := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	var firstErr error
	for name, pkg := range pkgs {
		file := filepath.Join(dir, name+".wasm")
		out[name] = file
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.Command(GoTool(), "build", "-buildmode=c-shared", "-trimpath", "-o", file, pkg)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("build %s: %v\n%s", pkg, err, b)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}
