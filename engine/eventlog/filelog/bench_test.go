package filelog

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/eventlog/logtest"
)

func benchEvents(n, seed int) []event.Event { return logtest.BenchEvents(n, seed) }

// BenchmarkAppend measures durable appends (real fdatasync) of events with
// 100-byte payloads; one op is one event.
func BenchmarkAppend(b *testing.B) {
	logtest.BenchAppend(b, func(b *testing.B) eventlog.Log {
		l := mustOpen(b, b.TempDir(), Options{})
		b.Cleanup(func() { l.Close() })
		b.SetBytes(int64(EstimateEventSize(&benchEvents(1, 0)[0])))
		return l
	})
}

// BenchmarkAppendAllocate compares one appender's durable appends into a
// preallocated segment with appends that grow the file; one op is one event.
func BenchmarkAppendAllocate(b *testing.B) {
	for _, batch := range []int{1, 1000} {
		for _, alloc := range []bool{true, false} {
			b.Run(fmt.Sprintf("batch=%d/allocate=%v", batch, alloc), func(b *testing.B) {
				l := mustOpen(b, b.TempDir(), Options{noAllocate: !alloc})
				defer l.Close()
				evs := benchEvents(batch, 0)
				calls := (b.N + batch - 1) / batch
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < calls; i++ {
					if _, err := l.Append(context.Background(), evs); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(calls*batch)/b.Elapsed().Seconds(), "events/s")
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(calls), "us/append")
			})
		}
	}
}

// EstimateEventSize is the frame bytes one event takes (back-pointer,
// length and encoding), for SetBytes.
func EstimateEventSize(e *event.Event) int {
	enc, _ := event.Append(nil, e)
	return 2 + len(enc)
}

// buildBenchLog writes n events (batches of 1000, without sync) to dir.
func buildBenchLog(b *testing.B, dir string, n int) {
	b.Helper()
	l := mustOpen(b, dir, Options{NoSync: true})
	for i := 0; i < n; i += 1000 {
		mustAppend(b, l, benchEvents(min(1000, n-i), i)...)
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

func benchLogSize() int {
	if os.Getenv("TWINLOG_BENCH_LARGE") == "1" {
		return 10_000_000
	}
	return 1_000_000
}

// BenchmarkRead measures sequential read-back; one op is one event.
func BenchmarkRead(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	buildBenchLog(b, dir, n)
	l := mustOpen(b, dir, Options{})
	defer l.Close()
	for _, max := range []int{1000, 10000} {
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

// BenchmarkOpen measures Open of a pre-built log (page cache warm) of 1M
// events, or 10M with TWINLOG_BENCH_LARGE=1; one op is one Open+Close.
// streams=1000 spreads the events over 1,000 streams; streams=250000 over
// 250,000, in 16 MiB segments, as a node's log of twins is: many streams,
// most of them in several sealed segments, whose versions Open rebuilds.
func BenchmarkOpen(b *testing.B) {
	n := benchLogSize()
	for _, c := range []struct {
		streams int
		opts    Options
	}{{1000, Options{}}, {250_000, Options{SegmentSize: 16 << 20}}} {
		b.Run(fmt.Sprintf("events=%d/streams=%d", n, c.streams), func(b *testing.B) {
			dir := b.TempDir()
			l := mustOpen(b, dir, Options{NoSync: true, SegmentSize: c.opts.SegmentSize})
			for i := 0; i < n; i += 1000 {
				evs := benchEvents(min(1000, n-i), i)
				for j := range evs {
					evs[j].Stream = fmt.Sprintf("twin/%d", (i+j)%c.streams)
				}
				mustAppend(b, l, evs...)
			}
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				l := mustOpen(b, dir, c.opts)
				if h := l.Recovered().Head; h != uint64(n) {
					b.Fatalf("head %d, want %d", h, n)
				}
				l.Close()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/event")
		})
	}
}

// BenchmarkDiskSync measures the disk alone: one write of a batch-sized
// buffer (1000 events of ~130 bytes) and one fdatasync, into a preallocated
// file, as the log does per group commit. It bounds what one appender
// waiting on each batch can reach; one op is one write+sync.
func BenchmarkDiskSync(b *testing.B) {
	f, err := os.CreateTemp(b.TempDir(), "sync")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const size = 1000 * 130
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i)
	}
	total := int64(size) * int64(max(b.N, 1)+1)
	if err := f.Truncate(total); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.WriteAt(buf, int64(i)*size); err != nil {
			b.Fatal(err)
		}
		if err := datasync(f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "us/sync")
}
