package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/node"
)

// TestMain lets the test binary run as a child node for the crash test.
func TestMain(m *testing.M) {
	if dir := os.Getenv("TWINLOG_NODE_CHILD"); dir != "" {
		n, err := node.Open(context.Background(), node.Config{DataDir: dir, Listen: "127.0.0.1:0", Token: "crash"})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println("URL", n.URL())
		n.Serve(context.Background())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startChild(t *testing.T, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TWINLOG_NODE_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "URL "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd, u
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	t.Fatalf("child did not start")
	return nil, ""
}

// TestKillDuringWrites kills a real node process with SIGKILL while clients
// write twins over HTTP, restarts it, and checks that every acknowledged
// write is there and that no twin is in a state no request produced.
func TestKillDuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the crash test in -short mode")
	}
	dir := t.TempDir()
	acked := map[string]int{} // twin → highest acknowledged value
	var mu sync.Mutex
	c := &http.Client{Timeout: 10 * time.Second}
	send := func(method, url, body string) (int, error) {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer crash")
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	const rounds, workers = 4, 8
	for round := 0; round <= rounds; round++ {
		cmd, url := startChild(t, dir)
		// Everything acknowledged before this start must have survived.
		for id, v := range acked {
			var tw map[string]any
			req, _ := http.NewRequest("GET", url+"/digitaltwins/"+id, nil)
			req.Header.Set("Authorization", "Bearer crash")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&tw)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("round %d: acknowledged twin %s missing (%d)", round, id, resp.StatusCode)
			}
			got, _ := tw["n"].(float64)
			if int(got) < v {
				t.Fatalf("round %d: twin %s has n=%v, acknowledged %d", round, id, tw["n"], v)
			}
		}
		if round == rounds {
			cmd.Process.Kill()
			cmd.Wait()
			break
		}
		if round == 0 {
			model := `[{"@context":"dtmi:dtdl:context;3","@id":"dtmi:ex:Counter;1","@type":"Interface",
				"contents":[{"@type":"Property","name":"n","schema":"integer"}]}]`
			if code, err := send("POST", url+"/models", model); err != nil || code != 201 {
				t.Fatalf("create model: %d %v", code, err)
			}
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("r%d-w%d-%d", round, w, i%20)
					mu.Lock()
					next := acked[id] + 1
					mu.Unlock()
					body := fmt.Sprintf(`{"$metadata":{"$model":"dtmi:ex:Counter;1"},"n":%d}`, next)
					code, err := send("PUT", url+"/digitaltwins/"+id, body)
					if err != nil {
						return // the node was killed
					}
					if code != 200 {
						t.Errorf("PUT %s: %d", id, code)
						return
					}
					mu.Lock()
					if next > acked[id] {
						acked[id] = next
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(150+rand.IntN(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		close(stop)
		wg.Wait()
	}
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged")
	}
	t.Logf("%d twins acknowledged across %d kills", len(acked), rounds)
}
