// Package ingestload is the load generator of POST /ingest: concurrent
// clients post prebuilt batches of telemetry points over HTTP, each request
// acknowledged once its points are durable. A refused request (429) is
// retried after a short pause and counts once accepted.
package ingestload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twinlog/twinlog/bench"
	"github.com/twinlog/twinlog/bench/httpload"
)

// Config is one run. Zero values mean the documented defaults.
type Config struct {
	// URL is the server's base URL. Required.
	URL string
	// Token is the bearer token. Default none.
	Token string
	// Bodies are the request bodies, posted in turn. Required (see
	// Bodies).
	Bodies [][]byte
	// Points is the number of points of each body. Required.
	Points int
	// Requests is the number of requests of the run. Required.
	Requests int
	// Clients is the number of concurrent clients (connections). Default 4.
	Clients int
}

// Result is what a run measured.
type Result struct {
	// Requests and Points are the requests and points acknowledged.
	Requests, Points int
	// Elapsed is the wall time from the first request to the last answer.
	Elapsed time.Duration
	// P99 is the 99th percentile of request latency, retries included.
	P99 time.Duration
	// Refused is the number of 429 answers.
	Refused int
	// Position is the highest log position an answer reported.
	Position uint64
	// CPU is the process's CPU time (user and system) during the run: the
	// server's when it runs in the same process, and the generator's.
	CPU time.Duration
}

// PointsPerSec is the acknowledged points per second.
func (r *Result) PointsPerSec() float64 { return float64(r.Points) / r.Elapsed.Seconds() }

// Metrics takes benchmark figures; *testing.B is one.
type Metrics interface {
	ReportMetric(n float64, unit string)
}

// Report reports the run's figures: points/s, p99-us, 429/op, and CPU
// time per point with the rate it projects on two dedicated cores
// (points/s@2cores), steadier on a shared machine.
func (r *Result) Report(m Metrics) {
	m.ReportMetric(r.PointsPerSec(), "points/s")
	m.ReportMetric(float64(r.P99.Microseconds()), "p99-us")
	m.ReportMetric(float64(r.Refused)/float64(max(r.Requests, 1)), "429/op")
	m.ReportMetric(float64(r.CPU.Nanoseconds())/float64(r.Points), "cpu-ns/point")
	m.ReportMetric(2*float64(r.Points)/r.CPU.Seconds(), "points/s@2cores")
}

// Bodies returns n JSON-array bodies of batch points each, spread over
// twins round robin, with a "temperature" (double) and a "co2" (integer)
// value and a source time.
func Bodies(n, batch int, twins []string) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		var buf bytes.Buffer
		buf.WriteByte('[')
		for j := range batch {
			if j > 0 {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, `{"twinId":%q,"time":"2024-05-01T10:00:%02dZ","temperature":%d.%d,"co2":%d}`,
				twins[(i*batch+j)%len(twins)], j%60, 15+j%10, j%10, 400+j%200)
		}
		buf.WriteByte(']')
		out[i] = buf.Bytes()
	}
	return out
}

// Run posts cfg.Requests bodies and waits for every answer. Any answer
// other than 200 and 429 ends the run with an error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.URL == "" || len(cfg.Bodies) == 0 || cfg.Points <= 0 || cfg.Requests <= 0 {
		return nil, errors.New("ingestload: URL, Bodies, Points and Requests are required")
	}
	if cfg.Clients <= 0 {
		cfg.Clients = 4
	}
	// A lean client (see httpload): the generator shares the cores with
	// the node it measures.
	client, err := httpload.New(cfg.URL, cfg.Clients)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	headers := []httpload.Header{{Name: "Content-Type", Value: "application/json"}}
	if cfg.Token != "" {
		headers = append(headers, httpload.Header{Name: "Authorization", Value: "Bearer " + cfg.Token})
	}
	var (
		next     atomic.Int64
		refused  atomic.Int64
		position atomic.Uint64
		mu       sync.Mutex
		lat      []time.Duration
		firstErr error
	)
	post := func(body []byte, buf *[]byte) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		status, b, err := client.Do("POST", "/ingest", headers, body, (*buf)[:0])
		*buf = b
		if err != nil || status != http.StatusOK {
			return status, err
		}
		// The report ends with "position":N}; read it without decoding.
		if i := bytes.LastIndex(b, []byte(`"position":`)); i >= 0 {
			var p uint64
			for _, c := range b[i+len(`"position":`):] {
				if c < '0' || c > '9' {
					break
				}
				p = p*10 + uint64(c-'0')
			}
			for old := position.Load(); p > old && !position.CompareAndSwap(old, p); old = position.Load() {
			}
		}
		return status, nil
	}
	start, cpu0 := time.Now(), bench.CPUTime()
	var wg sync.WaitGroup
	for range cfg.Clients {
		wg.Go(func() {
			var mine []time.Duration
			var buf []byte
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			for {
				i := next.Add(1) - 1
				if i >= int64(cfg.Requests) {
					return
				}
				body := cfg.Bodies[i%int64(len(cfg.Bodies))]
				t0 := time.Now()
				for {
					code, err := post(body, &buf)
					if err == nil && code == http.StatusTooManyRequests {
						refused.Add(1)
						time.Sleep(5 * time.Millisecond)
						continue
					}
					if err == nil && code != http.StatusOK {
						err = fmt.Errorf("ingestload: status %d", code)
					}
					if err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						next.Store(int64(cfg.Requests))
						return
					}
					break
				}
				mine = append(mine, time.Since(t0))
			}
		})
	}
	wg.Wait()
	r := &Result{Elapsed: time.Since(start), CPU: bench.CPUTime() - cpu0, Refused: int(refused.Load()), Position: position.Load()}
	if firstErr != nil {
		return r, firstErr
	}
	r.Requests, r.Points = len(lat), len(lat)*cfg.Points
	slices.Sort(lat)
	if len(lat) > 0 {
		r.P99 = lat[len(lat)*99/100]
	}
	return r, nil
}
