package handlers

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/wasm-handlers/abi"
	"github.com/twinlog/twinlog/wasm-handlers/host"
)

// A telemetry.batch event (twingraph.TypeTelemetryBatch, the ingestion
// path's layout) carries many points in one log event. Handlers see each
// point as a telemetry event of its own, in the batch's order, selected by
// the same triggers as a telemetry event of its twin:
//
//   - the point's abi.Event has the batch's position and time, type
//     "telemetry", and a seed derived from the position and the point's
//     index in the batch, so a replay gives every point its own seed;
//   - the outputs of point i are numbered from i<<32 (Output.Seq of point
//     0 is unchanged), so an output's key, position and sequence number,
//     names one output of one point, and re-handling the batch after a
//     restart skips exactly the outputs already written;
//   - a job holds at most MaxBatch events, points included: a batch with
//     more selected points than that spans several jobs, and the cursor
//     stays before the batch until the job with its last point is handled.
//
// A point dead-lettered by isolation is recorded with the batch's
// position; on re-handling after a restart the batch is not skipped for
// it (the dead letter names no point), so the point may be dead-lettered
// again, while the other points' outputs are still written once.

// batchCursor is where a partly taken telemetry.batch goes on.
type batchCursor struct {
	pos  uint64 // position of the batch
	next int    // index of its first point not taken yet
}

// errJobFull stops decoding a batch when the job has no room left.
var errJobFull = errors.New("handlers: job full")

// takePoints adds to j the points of telemetry.batch e that the handler's
// triggers select, from the first one no earlier job took, until j holds
// max events. It reports whether it considered every point of e; when not,
// the next job goes on from the first point left.
func (r *runner) takePoints(j *job, e *event.Event, max int) bool {
	from := 0
	if r.partial.pos == e.Position {
		from = r.partial.next
	}
	// Room for the points, as far as the job takes them.
	if n, err := twingraph.TelemetryBatchPoints(e.Payload); err == nil && n > from {
		room := min(n-from, max-len(j.events))
		j.events, j.abi = slices.Grow(j.events, room), slices.Grow(j.abi, room)
	}
	// Only the twin and the component are copied out of the payload: the
	// message id and source time are not handed to the guest.
	err := twingraph.DecodeTelemetryBatchRaw(e.Payload, func(i int, p *twingraph.RawTelemetryPoint) error {
		if i < from {
			return nil
		}
		if len(j.events) == max {
			r.partial = batchCursor{pos: e.Position, next: i}
			return errJobFull
		}
		a := abi.Event{Position: e.Position, Time: e.Time, Seed: pointSeed(e.Position, i), Kind: abi.KindTelemetry,
			Type: twingraph.TypeTelemetry, Twin: string(p.Twin), Component: string(p.Component), Payload: p.Body}
		if t, ok := j.snap.Twin(a.Twin); ok {
			a.Model = t.Model
		}
		r.take(j, e, a, i)
		return nil
	})
	if errors.Is(err, errJobFull) {
		return false
	}
	r.partial = batchCursor{}
	if err != nil {
		// The twin graph applies a batch before handlers see it and halts
		// on a damaged one, so this is not expected; the points read so
		// far are handled.
		r.stats.report(Report{Time: time.Now(), Position: e.Position, Kind: "failure", Message: fmt.Sprintf("read telemetry batch: %v", err)})
	}
	return true
}

// pointSeed is the seed of point i of the batch at pos.
func pointSeed(pos uint64, i int) uint64 {
	return abi.Seed(abi.Seed(pos) + uint64(i))
}

// numbered makes the sequence numbers of outs, as the guest returned them
// for j, unique among the outputs of all the points of a batch: point i's
// count from i<<32.
func (j *job) numbered(outs []host.Output) []host.Output {
	if j.point == nil {
		return outs
	}
	for k := range outs {
		outs[k].Seq += j.point[outs[k].Cause] << 32
	}
	return outs
}

// one returns the job of j's i-th event alone.
func (j *job) one(i int) *job {
	s := &job{ctx: j.ctx, v: j.v, events: j.events[i : i+1], abi: j.abi[i : i+1], snap: j.snap, applied: j.applied,
		seen: j.seen, through: j.events[i].Position}
	if j.point != nil {
		s.point = j.point[i : i+1]
	}
	s.input = abi.AppendEvent(abi.AppendBatchHeader(nil, 1), &s.abi[0])
	return s
}
