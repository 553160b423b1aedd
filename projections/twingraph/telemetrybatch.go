package twingraph

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// TypeTelemetryBatch is the type of events that carry many telemetry
// points, of any twins, in the order received: the compact layout the
// ingestion path (processors/ingest) writes. Every consumer of telemetry
// reads it as it reads the equivalent "telemetry" events, one per point.
const TypeTelemetryBatch = "telemetry.batch"

// TelemetryBatchSchemaVersion is the payload layout version of
// telemetry.batch events.
const TelemetryBatchSchemaVersion uint16 = 1

// telemBatchPrefix prefixes the streams of telemetry.batch events. It never
// collides with TelemetryStream's "telemetry/<twin>".
const telemBatchPrefix = "ingest/"

// TelemetryBatchStream returns the stream of telemetry.batch events of one
// shard of the ingestion path. Nothing expects these streams' versions:
// writers spread batches over shards only to keep each stream short.
func TelemetryBatchStream(shard int) string { return telemBatchPrefix + strconv.Itoa(shard) }

// TelemetryPoint is one point of a telemetry batch: the fields of a
// Telemetry payload.
type TelemetryPoint struct {
	Twin      string
	Component string
	MessageID string
	// SourceTime is the point's source time, "" when absent.
	SourceTime string
	// Body is the JSON object of the point's telemetry values.
	Body []byte
}

// ErrTelemetryBatchCorrupt is returned by DecodeTelemetryBatch for a
// malformed payload.
var ErrTelemetryBatchCorrupt = errors.New("twingraph: corrupt telemetry batch")

// telemBatchMagic is the first byte of a version-1 payload.
const telemBatchMagic = 0xB1

// AppendTelemetryBatchHeader starts a telemetry.batch payload of n points
// in dst; AppendTelemetryPoint appends them.
//
// The payload is: one byte 0xB1, uvarint n, then n points, each five
// length-prefixed (uvarint) byte strings: twin id, component, message id,
// source time, body (a JSON object).
func AppendTelemetryBatchHeader(dst []byte, n int) []byte {
	dst = append(dst, telemBatchMagic)
	return binary.AppendUvarint(dst, uint64(n))
}

// AppendTelemetryPoint appends one point to a payload started with
// AppendTelemetryBatchHeader.
func AppendTelemetryPoint(dst []byte, p *TelemetryPoint) []byte {
	dst = appendStr(dst, p.Twin)
	dst = appendStr(dst, p.Component)
	dst = appendStr(dst, p.MessageID)
	dst = appendStr(dst, p.SourceTime)
	dst = binary.AppendUvarint(dst, uint64(len(p.Body)))
	return append(dst, p.Body...)
}

// DecodeTelemetryBatch calls fn for each point of a telemetry.batch payload,
// in order, with the point's index. The point passed to fn is reused
// between calls; its strings are copies, its Body aliases payload. It stops
// at the first error of fn and returns it. A malformed payload is an error
// wrapping ErrTelemetryBatchCorrupt; fn may have been called for the points
// before the damage.
func DecodeTelemetryBatch(payload []byte, fn func(i int, p *TelemetryPoint) error) error {
	var p TelemetryPoint
	return DecodeTelemetryBatchRaw(payload, func(i int, r *RawTelemetryPoint) error {
		p = TelemetryPoint{Twin: string(r.Twin), Component: string(r.Component), MessageID: string(r.MessageID),
			SourceTime: string(r.SourceTime), Body: r.Body}
		return fn(i, &p)
	})
}

// RawTelemetryPoint is a point of a telemetry.batch payload as it lies
// there: every field aliases the payload.
type RawTelemetryPoint struct {
	Twin, Component, MessageID, SourceTime, Body []byte
}

// DecodeTelemetryBatchRaw is DecodeTelemetryBatch without copying: the
// point passed to fn is reused between calls and aliases payload, so fn
// copies what it keeps. The projections that read every point use it.
func DecodeTelemetryBatchRaw(payload []byte, fn func(i int, p *RawTelemetryPoint) error) error {
	if len(payload) == 0 || payload[0] != telemBatchMagic {
		return fmt.Errorf("%w: bad header", ErrTelemetryBatchCorrupt)
	}
	b := payload[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return fmt.Errorf("%w: bad count", ErrTelemetryBatchCorrupt)
	}
	b = b[k:]
	var p RawTelemetryPoint
	fields := [5]*[]byte{&p.Twin, &p.Component, &p.MessageID, &p.SourceTime, &p.Body}
	for i := 0; i < int(n); i++ {
		for _, f := range fields {
			l, k := binary.Uvarint(b)
			if k <= 0 || l > uint64(len(b)-k) {
				return fmt.Errorf("%w: point %d truncated", ErrTelemetryBatchCorrupt, i)
			}
			*f = b[k : k+int(l) : k+int(l)]
			b = b[k+int(l):]
		}
		if err := fn(i, &p); err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrTelemetryBatchCorrupt, len(b))
	}
	return nil
}

// TelemetryBatchPoints returns the number of points a telemetry.batch
// payload announces, without checking the points.
func TelemetryBatchPoints(payload []byte) (int, error) {
	if len(payload) == 0 || payload[0] != telemBatchMagic {
		return 0, fmt.Errorf("%w: bad header", ErrTelemetryBatchCorrupt)
	}
	n, k := binary.Uvarint(payload[1:])
	if k <= 0 || n > uint64(len(payload)) {
		return 0, fmt.Errorf("%w: bad count", ErrTelemetryBatchCorrupt)
	}
	return int(n), nil
}
