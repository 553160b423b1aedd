package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/twinlog/twinlog/engine/twins"
	"github.com/twinlog/twinlog/processors/ingest"
)

type answer struct {
	status int
	header http.Header
	body   string
	rep    ingest.Report
}

func post(t testing.TB, url string, body []byte, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest("POST", url+"/ingest", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	json.Unmarshal(b, &a.rep)
	return a
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestIngestAcceptsAndRejects(t *testing.T) {
	for _, layout := range ingest.Layouts {
		t.Run(fmt.Sprintf("layout=%s", layout), func(t *testing.T) {
			e := newEnv(t, false, 3, ingest.Options{Layout: layout})
			body := strings.Join([]string{
				`{"twinId":"s0","time":"2024-05-01T10:00:00Z","temperature":21.5,"co2":400}`,
				`{"twinId":"nope","temperature":1}`,               // unknown twin
				`{"twinId":"s1","humidity":3}`,                    // unknown field
				`{"twinId":"s1","co2":4.5}`,                       // wrong type
				`{"twinId":"s1","temperature":"hot"}`,             // wrong type
				`{"twinId":"s1", "temperature": 3`,                // malformed line
				`{"deviceId":"d9","temperature":3}`,               // unknown device
				`{"temperature":3}`,                               // no source
				`{"twinId":"s1","time":"yesterday","alarm":true}`, // bad time
				`{"twinId":"s2","component":"hvac","fan":3}`,
				`{"twinId":"s2","component":"hvac","temperature":3}`, // not in the component
				`{"twinId":"s2","position":{"x":1,"y":2},"status":"ok \u00e9","alarm":false,"messageId":"m-1"}`,
				`{"twinId":"s2","position":{"x":"a"}}`, // wrong nested type
			}, "\n")
			a := post(t, e.srv.URL, []byte(body), "Content-Type", "application/x-ndjson")
			if a.status != 200 {
				t.Fatalf("status=%d, want 200: %s", a.status, a.body)
			}
			if a.rep.Accepted != 3 {
				t.Fatalf("accepted=%d, want 3: %s", a.rep.Accepted, a.body)
			}
			wantCodes := map[int]string{1: "DigitalTwinNotFound", 2: "UnknownTelemetry", 3: "ValidationFailed", 4: "ValidationFailed",
				5: "InvalidJson", 6: "DeviceNotFound", 7: "InvalidArgument", 8: "InvalidArgument", 10: "UnknownTelemetry", 12: "ValidationFailed"}
			got := map[int]string{}
			for _, r := range a.rep.Rejected {
				got[r.Index] = r.Code
				if r.Message == "" {
					t.Errorf("rejection %d has no message", r.Index)
				}
			}
			for i, c := range wantCodes {
				if got[i] != c {
					t.Errorf("point %d: code=%q, want %q (%s)", i, got[i], c, a.body)
				}
			}
			if len(got) != len(wantCodes) {
				t.Errorf("rejections=%v, want %v", got, wantCodes)
			}
			pts := e.points(t)
			if len(pts) != 3 {
				t.Fatalf("points in log=%d, want 3", len(pts))
			}
			if pts[0].Twin != "s0" || string(pts[0].Body) != `{"temperature":21.5,"co2":400}` || pts[0].SourceTime != "2024-05-01T10:00:00Z" {
				t.Errorf("point 0 = %+v %s", pts[0], pts[0].Body)
			}
			if pts[1].Component != "hvac" || pts[2].MessageID != "m-1" {
				t.Errorf("points = %+v", pts)
			}
			// The twin graph's last-known telemetry sees the points.
			if err := e.eng.WaitApplied(context.Background(), a.rep.Position); err != nil {
				t.Fatal(err)
			}
			rec, ok := e.g.Snapshot().Telemetry("s0")
			if !ok || len(rec.Last) != 1 || string(rec.Last[0].Body) != `{"temperature":21.5,"co2":400}` {
				t.Fatalf("last telemetry of s0 = %+v", rec)
			}
			if rec, ok := e.g.Snapshot().Telemetry("s2"); !ok || len(rec.Last) != 2 || rec.Recent[len(rec.Recent)-1] != "m-1" {
				t.Fatalf("last telemetry of s2 = %+v", rec)
			}
		})
	}
}

func TestIngestRequestErrors(t *testing.T) {
	e := newEnv(t, false, 1, ingest.Options{MaxPoints: 10, MaxBodyBytes: 4096})
	many := make([]string, 11)
	for i := range many {
		many[i] = `{"twinId":"s0","co2":1}`
	}
	for _, tc := range []struct {
		name   string
		body   []byte
		hdr    []string
		status int
		code   string
	}{
		{"array ok", []byte(`[{"twinId":"s0","co2":1},{"twinId":"s0","co2":2}]`), nil, 200, ""},
		{"gzip ok", gz([]byte(`[{"twinId":"s0","co2":1}]`)), []string{"Content-Encoding", "gzip"}, 200, ""},
		{"bad gzip", []byte("not gzip at all"), []string{"Content-Encoding", "gzip"}, 400, "InvalidArgument"},
		{"truncated gzip", gz([]byte(`[{"twinId":"s0","co2":1}]`))[:20], []string{"Content-Encoding", "gzip"}, 400, "InvalidArgument"},
		{"bad encoding", []byte(`[]`), []string{"Content-Encoding", "br"}, 415, "UnsupportedMediaType"},
		{"malformed array", []byte(`[{"twinId":"s0","co2":1},`), nil, 400, "InvalidJson"},
		{"not an object", []byte(`[1,2]`), nil, 400, "InvalidJson"},
		{"empty", []byte(``), nil, 400, "InvalidArgument"},
		{"empty array", []byte(`[]`), nil, 400, "InvalidArgument"},
		{"all rejected", []byte(`[{"twinId":"x","co2":1}]`), nil, 400, "ValidationFailed"},
		{"too many points", []byte("[" + strings.Join(many, ",") + "]"), nil, 413, "PayloadTooLarge"},
		{"too many bytes", []byte("[" + strings.Repeat(`{"twinId":"s0","co2":1},`, 300) + `{"twinId":"s0","co2":1}]`), nil, 413, "PayloadTooLarge"},
		{"gzip bomb", gz(bytes.Repeat([]byte(" "), 1<<20)), []string{"Content-Encoding", "gzip"}, 413, "PayloadTooLarge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.points(t))
			a := post(t, e.srv.URL, tc.body, tc.hdr...)
			if a.status != tc.status {
				t.Fatalf("status=%d, want %d: %s", a.status, tc.status, a.body)
			}
			if tc.code != "" {
				var eb struct {
					Error struct{ Code, Message string }
				}
				json.Unmarshal([]byte(a.body), &eb)
				if eb.Error.Code != tc.code || eb.Error.Message == "" {
					t.Fatalf("error=%+v, want code %s: %s", eb.Error, tc.code, a.body)
				}
				if after := len(e.points(t)); after != before {
					t.Fatalf("a failed request appended %d points", after-before)
				}
			}
		})
	}
}

// countingConsumer lags at a fixed position.
type stuckConsumer struct{ at uint64 }

func (c *stuckConsumer) Applied() uint64 { return c.at }

func TestIngestBackpressureLag(t *testing.T) {
	// MaxLag counts log positions: a request is one position in the batch
	// layout, one per point in the other.
	for _, tc := range []struct {
		layout   ingest.Layout
		accepted int // requests of 2 points accepted before the 429
	}{{ingest.LayoutEvents, 1}, {ingest.LayoutBatch, 2}} {
		t.Run(fmt.Sprintf("layout=%s", tc.layout), func(t *testing.T) {
			e := newEnv(t, false, 1, ingest.Options{MaxLag: 1, Layout: tc.layout})
			head, _ := e.log.Head(context.Background())
			e.in.AddConsumer(&stuckConsumer{at: head})
			body := []byte(`[{"twinId":"s0","co2":1},{"twinId":"s0","co2":2}]`)
			for i := range tc.accepted {
				if a := post(t, e.srv.URL, body); a.status != 200 {
					t.Fatalf("request %d: status=%d: %s", i, a.status, a.body)
				}
			}
			a := post(t, e.srv.URL, body)
			if a.status != 429 || a.header.Get("Retry-After") == "" {
				t.Fatalf("lagging consumer: status=%d Retry-After=%q, want 429 with Retry-After", a.status, a.header.Get("Retry-After"))
			}
			if n := len(e.points(t)); n != 2*tc.accepted {
				t.Fatalf("points=%d, want %d", n, 2*tc.accepted)
			}
		})
	}
}

// TestIngestFlood sends far more concurrent data than the in-flight budget
// admits: some requests are refused with 429, the accepted points are all in
// the log, and the budget returns to zero.
func TestIngestFlood(t *testing.T) {
	e := newEnv(t, true, 10, ingest.Options{MaxInflightBytes: 3 << 20, Layout: ingest.LayoutBatch})
	var body bytes.Buffer
	body.WriteByte('[')
	for i := range 5000 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"twinId":"s%d","temperature":%d.5,"co2":%d,"status":"padding-padding-padding-padding"}`, i%10, i, i)
	}
	body.WriteByte(']')
	var (
		wg                sync.WaitGroup
		mu                sync.Mutex
		accepted, refused int
		statuses          = map[int]int{}
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				a := post(t, e.srv.URL, body.Bytes())
				mu.Lock()
				statuses[a.status]++
				switch a.status {
				case 200:
					accepted += a.rep.Accepted
				case 429:
					refused++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if statuses[200]+statuses[429] != 64 {
		t.Fatalf("statuses=%v, want only 200 and 429", statuses)
	}
	if refused == 0 {
		t.Fatalf("no request was refused: %v", statuses)
	}
	if n := len(e.points(t)); n != accepted {
		t.Fatalf("points in log=%d, want %d accepted", n, accepted)
	}
	if f := e.in.Inflight(); f != 0 {
		t.Fatalf("in-flight bytes after the flood=%d, want 0", f)
	}
	t.Logf("statuses %v, %d points accepted", statuses, accepted)
}

// TestIngestFollowsTwinChanges sends points to twins that are deleted,
// re-created with another model and joined by new twins between requests:
// each request checks its points against the twins as they are then, and
// within a request points of different models with fields in changing
// orders are each checked against their own model.
func TestIngestFollowsTwinChanges(t *testing.T) {
	e := newEnv(t, false, 2, ingest.Options{})
	ctx := context.Background()
	send := func(lines ...string) answer {
		t.Helper()
		a := post(t, e.srv.URL, []byte(strings.Join(lines, "\n")), "Content-Type", "application/x-ndjson")
		if a.status != 200 {
			t.Fatalf("status=%d: %s", a.status, a.body)
		}
		return a
	}
	codes := func(a answer) map[int]string {
		got := map[int]string{}
		for _, r := range a.rep.Rejected {
			got[r.Index] = r.Code
		}
		return got
	}
	if a := send(`{"twinId":"s0","temperature":1,"co2":2}`, `{"twinId":"s1","co2":3,"temperature":4}`); a.rep.Accepted != 2 {
		t.Fatalf("accepted=%d: %s", a.rep.Accepted, a.body)
	}
	if err := e.svc.DeleteTwin(ctx, "test", "s1", twins.Cond{}); err != nil {
		t.Fatal(err)
	}
	a := send(`{"twinId":"s0","temperature":5}`, `{"twinId":"s1","temperature":6}`)
	if got := codes(a); a.rep.Accepted != 1 || got[1] != "DigitalTwinNotFound" {
		t.Fatalf("after delete: accepted=%d rejections=%v", a.rep.Accepted, got)
	}
	// s1 again, now an Hvac (telemetry fan only); s9 new.
	for id, model := range map[string]string{"s1": "dtmi:test:Hvac;1", "s9": "dtmi:test:Sensor;1"} {
		body := `{"$metadata":{"$model":"` + model + `"}}`
		if model == "dtmi:test:Sensor;1" {
			body = `{"$metadata":{"$model":"` + model + `"},"hvac":{"$metadata":{}}}`
		}
		if _, _, err := e.svc.PutTwin(ctx, "test", id, []byte(body), twins.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	a = send(
		`{"twinId":"s0","temperature":7,"co2":8}`,
		`{"twinId":"s1","temperature":9}`, // an Hvac has no temperature
		`{"twinId":"s1","fan":10}`,
		`{"twinId":"s9","co2":11,"temperature":12}`,
		`{"twinId":"s0","co2":13.5}`, // co2 is an integer
		`{"twinId":"s9","fan":14}`,   // a Sensor's fan is in its component
	)
	want := map[int]string{1: "UnknownTelemetry", 4: "ValidationFailed", 5: "UnknownTelemetry"}
	if got := codes(a); a.rep.Accepted != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after re-create: accepted=%d rejections=%v, want 3 and %v: %s", a.rep.Accepted, got, want, a.body)
	}
}
