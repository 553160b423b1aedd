package twingraph_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// TestTelemetryRecordsKeepNoOldBodies applies telemetry batches with
// 200-byte bodies, 64 points per twin, and bounds the heap each twin's
// record keeps: its recent message ids must not keep the bodies of the
// points they came with (only the last point's body is the twin's).
func TestTelemetryRecordsKeepNoOldBodies(t *testing.T) {
	const twins, rounds = 2000, 64
	g := twingraph.New(twingraph.Options{})
	body := []byte(`{"v":"` + strings.Repeat("x", 192) + `"}`)
	var pos uint64
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	for r := range rounds {
		pts := make([]twingraph.TelemetryPoint, twins)
		for i := range pts {
			pts[i] = twingraph.TelemetryPoint{Twin: fmt.Sprintf("t%05d", i), MessageID: fmt.Sprintf("%08d-0000-4000-8000-%012d", r, i),
				SourceTime: "2026-11-26T10:00:00Z", Body: body}
		}
		pos++
		e := event.Event{Stream: "ingest/0", Type: twingraph.TypeTelemetryBatch, SchemaVersion: twingraph.TelemetryBatchSchemaVersion,
			Position: pos, Time: int64(pos) * 1e9, Payload: encodeBatch(pts)}
		if err := g.Apply([]event.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	per := (heap() - before) / twins
	t.Logf("%d bytes per twin", per)
	// 32 recent ids (~48 bytes each), the last point, the record and its
	// index entry: about 2.5 KB. With the ids viewing each point's copy,
	// 32 bodies: over 8 KB.
	if per > 4096 {
		t.Errorf("%d bytes of heap per twin's telemetry, want at most 4096", per)
	}
	runtime.KeepAlive(g)
}
