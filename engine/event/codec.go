package event

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Codec versions. The first byte of every encoded event names the layout of
// the rest, so the decoder can read every version it has ever written.
const (
	// V1 is the layout:
	//
	//	version   byte (1)
	//	position  uvarint
	//	time      uvarint (Unix nanoseconds; negative times are not encodable)
	//	schema    uvarint (SchemaVersion)
	//	lengths   5 × uvarint: stream, type, actor, causation, correlation
	//	payload   uvarint length
	//	strings   the five strings, concatenated
	//	payload   bytes
	V1 byte = 1

	// Current is the version Append writes.
	Current = V1
)

// Limits that keep a hostile or corrupt buffer from making the decoder
// allocate without bound.
const (
	// MaxStringLen bounds each string field.
	MaxStringLen = 64 << 10
	// MaxPayloadLen bounds the payload.
	MaxPayloadLen = 64 << 20
)

var (
	// ErrVersion is returned for an encoded event whose codec version this
	// build does not know.
	ErrVersion = errors.New("event: unknown codec version")
	// ErrCorrupt is returned for an encoded event that is truncated or
	// malformed.
	ErrCorrupt = errors.New("event: corrupt encoding")
	// ErrTooLarge is returned by Append for a field beyond the codec limits.
	ErrTooLarge = errors.New("event: field too large")
)

// EncodedSize returns an upper bound of the encoded size of e.
func EncodedSize(e *Event) int {
	return 1 + 3*binary.MaxVarintLen64 + 6*binary.MaxVarintLen32 +
		len(e.Stream) + len(e.Type) + len(e.Actor) + len(e.CausationID) + len(e.CorrelationID) + len(e.Payload)
}

// Append appends the encoding of e to dst in the Current version and returns
// the extended slice.
func Append(dst []byte, e *Event) ([]byte, error) {
	if len(e.Stream) > MaxStringLen || len(e.Type) > MaxStringLen || len(e.Actor) > MaxStringLen ||
		len(e.CausationID) > MaxStringLen || len(e.CorrelationID) > MaxStringLen {
		return dst, fmt.Errorf("%w: string field over %d bytes", ErrTooLarge, MaxStringLen)
	}
	if len(e.Payload) > MaxPayloadLen {
		return dst, fmt.Errorf("%w: payload of %d bytes over %d", ErrTooLarge, len(e.Payload), MaxPayloadLen)
	}
	if e.Time < 0 {
		return dst, fmt.Errorf("event: negative time %d", e.Time)
	}
	dst = append(dst, V1)
	dst = binary.AppendUvarint(dst, e.Position)
	dst = binary.AppendUvarint(dst, uint64(e.Time))
	dst = binary.AppendUvarint(dst, uint64(e.SchemaVersion))
	dst = binary.AppendUvarint(dst, uint64(len(e.Stream)))
	dst = binary.AppendUvarint(dst, uint64(len(e.Type)))
	dst = binary.AppendUvarint(dst, uint64(len(e.Actor)))
	dst = binary.AppendUvarint(dst, uint64(len(e.CausationID)))
	dst = binary.AppendUvarint(dst, uint64(len(e.CorrelationID)))
	dst = binary.AppendUvarint(dst, uint64(len(e.Payload)))
	dst = append(dst, e.Stream...)
	dst = append(dst, e.Type...)
	dst = append(dst, e.Actor...)
	dst = append(dst, e.CausationID...)
	dst = append(dst, e.CorrelationID...)
	dst = append(dst, e.Payload...)
	return dst, nil
}

// Decode decodes one event from the start of buf into e and returns the number
// of bytes consumed. The string fields of e share one fresh allocation; the
// Payload aliases buf, so the caller must not modify buf while e is in use
// (copy the payload to keep it independently).
func Decode(buf []byte, e *Event) (int, error) {
	if len(buf) == 0 {
		return 0, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	switch buf[0] {
	case V1:
		return decodeV1(buf, e)
	default:
		return 0, fmt.Errorf("%w: %d", ErrVersion, buf[0])
	}
}

func decodeV1(buf []byte, e *Event) (int, error) {
	var hdr [9]uint64
	off := 1
	for i := range hdr {
		v, n := binary.Uvarint(buf[off:])
		if n <= 0 {
			return 0, fmt.Errorf("%w: header field %d", ErrCorrupt, i)
		}
		hdr[i] = v
		off += n
	}
	if hdr[1] > 1<<63-1 {
		return 0, fmt.Errorf("%w: time out of range", ErrCorrupt)
	}
	if hdr[2] > 0xffff {
		return 0, fmt.Errorf("%w: schema version %d", ErrCorrupt, hdr[2])
	}
	var strLen uint64
	for _, l := range hdr[3:8] {
		if l > MaxStringLen {
			return 0, fmt.Errorf("%w: string of %d bytes", ErrCorrupt, l)
		}
		strLen += l
	}
	if hdr[8] > MaxPayloadLen {
		return 0, fmt.Errorf("%w: payload of %d bytes", ErrCorrupt, hdr[8])
	}
	rest := uint64(len(buf) - off)
	if strLen > rest || hdr[8] > rest-strLen {
		return 0, fmt.Errorf("%w: truncated", ErrCorrupt)
	}
	s := string(buf[off : off+int(strLen)])
	off += int(strLen)
	e.Position = hdr[0]
	e.Time = int64(hdr[1])
	e.SchemaVersion = uint16(hdr[2])
	p := 0
	take := func(l uint64) string {
		v := s[p : p+int(l)]
		p += int(l)
		return v
	}
	e.Stream = take(hdr[3])
	e.Type = take(hdr[4])
	e.Actor = take(hdr[5])
	e.CausationID = take(hdr[6])
	e.CorrelationID = take(hdr[7])
	if hdr[8] == 0 {
		e.Payload = nil
	} else {
		e.Payload = buf[off : off+int(hdr[8]) : off+int(hdr[8])]
	}
	off += int(hdr[8])
	return off, nil
}
