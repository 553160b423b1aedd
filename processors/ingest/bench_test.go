package ingest_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twinlog/twinlog/processors/ingest"
)

// BenchmarkIngestHTTP is the load generator for POST /ingest: concurrent
// clients post prebuilt batches over loopback HTTP to a node with a durable
// file log (fdatasync per group commit). A refused request (429) is retried
// after a short pause and counts only once accepted. It reports accepted
// points/s, request p99-us and the share of 429 answers.
func BenchmarkIngestHTTP(b *testing.B) {
	for _, layout := range []struct {
		name string
		l    ingest.Layout
	}{{"batch", ingest.LayoutBatch}, {"events", ingest.LayoutEvents}} {
		for _, batch := range []int{1000} {
			for _, clients := range []int{4, 16} {
				b.Run(fmt.Sprintf("layout=%s/batch=%d/clients=%d", layout.name, batch, clients), func(b *testing.B) {
					benchIngest(b, layout.l, batch, clients)
				})
			}
		}
	}
}

func benchIngest(b *testing.B, layout ingest.Layout, batch, clients int) {
	const twins = 1000
	e := newEnv(b, true, twins, ingest.Options{Layout: layout})
	bodies := make([][]byte, 32)
	for i := range bodies {
		var buf bytes.Buffer
		buf.WriteByte('[')
		for j := range batch {
			if j > 0 {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, `{"twinId":"s%d","time":"2024-05-01T10:00:%02dZ","temperature":%d.%d,"co2":%d}`,
				(i*batch+j)%twins, j%60, 15+j%10, j%10, 400+j%200)
		}
		buf.WriteByte(']')
		bodies[i] = buf.Bytes()
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	url := e.srv.URL + "/ingest"
	var (
		next      atomic.Int64
		refused   atomic.Int64
		mu        sync.Mutex
		latencies []time.Duration
	)
	b.ReportAllocs()
	b.SetBytes(int64(len(bodies[0])))
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					break
				}
				body := bodies[i%int64(len(bodies))]
				t0 := time.Now()
				for {
					resp, err := client.Post(url, "application/json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						break
					}
					if resp.StatusCode != http.StatusTooManyRequests {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					refused.Add(1)
					time.Sleep(5 * time.Millisecond)
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	// The machine may be shared: CPU time per point, server and load
	// generator together, projects the rate on two dedicated cores.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*batch), "cpu-ns/point")
	b.ReportMetric(2*float64(b.N*batch)/cpu.Seconds(), "points/s@2cores")
	slices.Sort(latencies)
	b.ReportMetric(float64(b.N*batch)/el.Seconds(), "points/s")
	if len(latencies) > 0 {
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "p99-us")
	}
	b.ReportMetric(float64(refused.Load())/float64(b.N), "429/op")
	if got := e.in.Points(); got != uint64(b.N*batch) {
		b.Fatalf("accepted %d points, want %d", got, b.N*batch)
	}
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
