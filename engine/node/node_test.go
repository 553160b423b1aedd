package node_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/node"
)

func start(t *testing.T, cfg node.Config) (*node.Node, func()) {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	n, err := node.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	return n, func() {
		cancel()
		if err := <-done; err != nil && err != http.ErrServerClosed {
			t.Errorf("serve: %v", err)
		}
	}
}

func client(t *testing.T, dataDir string) *http.Client {
	pem, err := os.ReadFile(filepath.Join(dataDir, "tls", "cert.pem"))
	if err != nil {
		return http.DefaultClient
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func do(t *testing.T, c *http.Client, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestTokenAndRestart(t *testing.T) {
	dir := t.TempDir()
	n, stop := start(t, node.Config{DataDir: dir, SelfSigned: true})
	c := client(t, dir)
	tok := n.Token()
	if !strings.HasPrefix(n.URL(), "https://") {
		t.Fatalf("URL %s, want https", n.URL())
	}
	if code, _ := do(t, c, "GET", n.URL()+"/healthz", "", ""); code != 200 {
		t.Fatalf("healthz = %d", code)
	}
	if code, body := do(t, c, "GET", n.URL()+"/models", "", ""); code != 401 || !strings.Contains(body, `"code":"Unauthorized"`) {
		t.Fatalf("no token: %d %s", code, body)
	}
	if code, _ := do(t, c, "GET", n.URL()+"/models", "wrong", ""); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	model := `[{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Room;1","@type":"Interface",
		"contents":[{"@type":"Property","name":"temperature","schema":"double"}]}]`
	if code, body := do(t, c, "POST", n.URL()+"/models?api-version=2023-10-31", tok, model); code != 201 {
		t.Fatalf("create model: %d %s", code, body)
	}
	if code, body := do(t, c, "PUT", n.URL()+"/digitaltwins/room-1?api-version=2022-05-31", tok,
		`{"$metadata":{"$model":"dtmi:ex:Room;1"},"temperature":21}`); code != 200 {
		t.Fatalf("put twin: %d %s", code, body)
	}
	if code, body := do(t, c, "GET", n.URL()+"/models?api-version=2019-01-01", tok, ""); code != 400 {
		t.Fatalf("old api-version: %d %s", code, body)
	}
	stop()

	// The token is kept in the data dir, and the state is rebuilt from the log.
	n2, stop2 := start(t, node.Config{DataDir: dir, SelfSigned: true})
	defer stop2()
	if n2.Token() != tok {
		t.Fatalf("token changed across restart")
	}
	code, body := do(t, c, "GET", n2.URL()+"/digitaltwins/room-1", tok, "")
	if code != 200 {
		t.Fatalf("get twin after restart: %d %s", code, body)
	}
	var tw map[string]any
	json.Unmarshal([]byte(body), &tw)
	if tw["temperature"] != 21.0 {
		t.Fatalf("twin after restart: %s", body)
	}
}

// TestAzureSDK drives a node with the unmodified Azure Digital Twins SDK for
// JavaScript over HTTPS with a bearer token (testdata/sdk/sdk.mjs). It needs
// Node.js and npm; it skips, saying so, when they are missing or the
// packages cannot be installed.
func TestAzureSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the SDK test in -short mode")
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found on PATH: skipping the Azure SDK test")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm not found on PATH: skipping the Azure SDK test")
	}
	sdkDir, _ := filepath.Abs("testdata/sdk")
	if _, err := os.Stat(filepath.Join(sdkDir, "node_modules", "@azure", "digital-twins-core")); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = sdkDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("npm ci failed (no registry?): skipping the Azure SDK test: %v\n%s", err, out)
		}
	}
	dir := t.TempDir()
	n, stop := start(t, node.Config{DataDir: dir, SelfSigned: true})
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "sdk.mjs")
	cmd.Dir = sdkDir
	cmd.Env = append(os.Environ(),
		"TWINLOG_URL="+n.URL(),
		"TWINLOG_TOKEN="+n.Token(),
		"NODE_EXTRA_CA_CERTS="+filepath.Join(dir, "tls", "cert.pem"))
	out, err := cmd.CombinedOutput()
	t.Logf("sdk.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("Azure SDK checks failed: %v", err)
	}
}
