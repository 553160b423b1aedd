package twins_test

import (
	"encoding/json"
	"strconv"
	"sync"
	"testing"

	"github.com/twinlog/twinlog/engine/twins"
)

// TestCombinerNoLostUpdates increments counters with read-modify-write
// patches guarded by If-Match from many goroutines at once. A caller's own
// decision, made against a snapshot a concurrent batch has since made stale,
// must not be appended: every increment that succeeds is kept, and the
// counters end at exactly the number of successes.
func TestCombinerNoLostUpdates(t *testing.T) {
	e := withModels(t)
	const twinsN, workers, each = 3, 12, 40
	for i := range twinsN {
		e.put("c"+strconv.Itoa(i), `{"$metadata":{"$model":"dtmi:test:Room;1"},"name":"c","temperature":0,"thermostat":{}}`)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < each; {
				id := "c" + strconv.Itoa((w+k)%twinsN)
				body, etag, err := e.svc.GetTwin(e.ctx, id)
				if err != nil {
					t.Error(err)
					return
				}
				var cur struct{ Temperature float64 }
				if err := json.Unmarshal(body, &cur); err != nil {
					t.Error(err)
					return
				}
				patch := `[{"op":"replace","path":"/temperature","value":` + strconv.Itoa(int(cur.Temperature)+1) + `}]`
				_, err = e.svc.PatchTwin(e.ctx, "test", id, []byte(patch), twins.Cond{IfMatch: etag})
				switch code(err) {
				case "":
					k++
				case "PreconditionFailed":
					// Another writer got there first: read again.
				default:
					t.Errorf("patch %s: %v", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := 0.0
	for i := range twinsN {
		total += e.twin("c" + strconv.Itoa(i))["temperature"].(float64)
	}
	if total != workers*each {
		t.Fatalf("counters sum to %v after %d successful increments", total, workers*each)
	}
}
