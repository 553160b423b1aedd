package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Event types and streams written by this package.
const (
	// TypeTelemetryBatch is the type of a LayoutBatch event: many points of
	// any twins, in the order received.
	TypeTelemetryBatch = "telemetry.batch"
	// BatchSchemaVersion is the payload layout version of
	// TypeTelemetryBatch.
	BatchSchemaVersion uint16 = 1
	// BatchStreamPrefix prefixes the streams of batch events:
	// "ingest/<shard>". It never collides with "telemetry/<twin>".
	BatchStreamPrefix = "ingest/"
)

// BatchPoint is one point of a telemetry batch. Decoded strings and slices
// alias the payload.
type BatchPoint struct {
	Twin      string
	Component string
	MessageID string
	// SourceTime is the point's source time, "" when absent.
	SourceTime string
	// Body is the JSON object of the point's telemetry values.
	Body []byte
}

// ErrBatchCorrupt is returned by DecodeBatch for a malformed payload.
var ErrBatchCorrupt = errors.New("ingest: corrupt telemetry batch")

// batchMagic is the first byte of a version-1 payload.
const batchMagic = 0xB1

// AppendBatchHeader starts a batch payload of n points in dst.
//
// The payload is: one byte 0xB1, uvarint n, then n points, each five
// length-prefixed (uvarint) byte strings: twin id, component, message id,
// source time, body (a JSON object).
func AppendBatchHeader(dst []byte, n int) []byte {
	dst = append(dst, batchMagic)
	return binary.AppendUvarint(dst, uint64(n))
}

// AppendBatchPoint appends one point to a payload started with
// AppendBatchHeader.
func AppendBatchPoint(dst []byte, p *BatchPoint) []byte {
	dst = appendStr(dst, p.Twin)
	dst = appendStr(dst, p.Component)
	dst = appendStr(dst, p.MessageID)
	dst = appendStr(dst, p.SourceTime)
	dst = binary.AppendUvarint(dst, uint64(len(p.Body)))
	return append(dst, p.Body...)
}

func appendStr(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodeBatch calls fn for each point of a batch payload, in order. The
// point passed to fn is reused between calls and aliases payload.
func DecodeBatch(payload []byte, fn func(p *BatchPoint) error) error {
	if len(payload) == 0 || payload[0] != batchMagic {
		return fmt.Errorf("%w: bad header", ErrBatchCorrupt)
	}
	b := payload[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return fmt.Errorf("%w: bad count", ErrBatchCorrupt)
	}
	b = b[k:]
	var p BatchPoint
	for i := uint64(0); i < n; i++ {
		var parts [5][]byte
		for j := range parts {
			l, k := binary.Uvarint(b)
			if k <= 0 || l > uint64(len(b)-k) {
				return fmt.Errorf("%w: point %d truncated", ErrBatchCorrupt, i)
			}
			parts[j] = b[k : k+int(l)]
			b = b[k+int(l):]
		}
		p = BatchPoint{Twin: string(parts[0]), Component: string(parts[1]), MessageID: string(parts[2]),
			SourceTime: string(parts[3]), Body: parts[4]}
		if err := fn(&p); err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBatchCorrupt, len(b))
	}
	return nil
}
