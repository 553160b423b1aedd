package natslog_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/logtest"
	"github.com/twinlog/twinlog/engine/eventlog/natslog"
	"github.com/twinlog/twinlog/engine/eventlog/natslog/natstest"
)

// The workload is the embedded log's (filelog/bench_test.go): events with
// 100-byte payloads over 1,000 streams, against an in-process server with
// file storage, in both durability modes.

func benchEvents(n, seed int) []event.Event { return logtest.BenchEvents(n, seed) }

var benchStreams atomic.Int64

// benchLog opens a Log on a fresh stream of the server at url.
func benchLog(b *testing.B, url string) *natslog.Log {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	n := benchStreams.Add(1)
	l, err := natslog.Open(context.Background(), nc, natslog.Options{
		Stream: fmt.Sprintf("BENCH%d", n), Subject: fmt.Sprintf("bench%d", n)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

func syncModes() []struct {
	name string
	opts natstest.Options
} {
	return []struct {
		name string
		opts natstest.Options
	}{
		{"sync=lazy", natstest.Options{}},
		{"sync=always", natstest.Options{SyncAlways: true}},
	}
}

// BenchmarkAppend measures acknowledged appends; one op is one event.
// sync=lazy is the server default (fsync every 2 minutes), sync=always the
// server option sync_interval: always.
func BenchmarkAppend(b *testing.B) {
	for _, mode := range syncModes() {
		b.Run(mode.name, func(b *testing.B) {
			s := natstest.RunServer(b, mode.opts)
			logtest.BenchAppend(b, func(b *testing.B) eventlog.Log { return benchLog(b, s.URL) })
		})
	}
}

// BenchmarkRead measures sequential read-back of a 100,000-event log; one op
// is one event.
func BenchmarkRead(b *testing.B) {
	const n = 100_000
	s := natstest.RunServer(b, natstest.Options{})
	l := benchLog(b, s.URL)
	for i := 0; i < n; i += 1000 {
		if _, err := l.Append(context.Background(), benchEvents(1000, i)); err != nil {
			b.Fatal(err)
		}
	}
	for _, max := range []int{100, 1000} {
		b.Run(fmt.Sprintf("max=%d", max), func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			from := uint64(1)
			for read := 0; read < b.N; {
				evs, err := l.Read(ctx, from, max)
				if err != nil {
					b.Fatal(err)
				}
				read += len(evs)
				from += uint64(len(evs))
				if from > n {
					from = 1
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkReadStream measures reading one stream's events back (100 of
// them, scattered over 100 batches of the log); one op is one event.
func BenchmarkReadStream(b *testing.B) {
	s := natstest.RunServer(b, natstest.Options{})
	l := benchLog(b, s.URL)
	for i := 0; i < 100_000; i += 1000 {
		if _, err := l.Append(context.Background(), benchEvents(1000, i)); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for read := 0; read < b.N; {
		evs, err := l.ReadStream(ctx, fmt.Sprintf("twin/%d", read%1000), 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		read += len(evs)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
