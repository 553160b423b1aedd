package twingraph_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twinlog/twinlog/projections/twingraph"
)

func encodeBatch(pts []twingraph.TelemetryPoint) []byte {
	b := twingraph.AppendTelemetryBatchHeader(nil, len(pts))
	for i := range pts {
		b = twingraph.AppendTelemetryPoint(b, &pts[i])
	}
	return b
}

func decodeBatch(payload []byte) ([]twingraph.TelemetryPoint, error) {
	var pts []twingraph.TelemetryPoint
	err := twingraph.DecodeTelemetryBatch(payload, func(i int, p *twingraph.TelemetryPoint) error {
		if i != len(pts) {
			return errors.New("index out of order")
		}
		pts = append(pts, *p)
		return nil
	})
	return pts, err
}

func samePoints(a, b []twingraph.TelemetryPoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		p, q := &a[i], &b[i]
		if p.Twin != q.Twin || p.Component != q.Component || p.MessageID != q.MessageID ||
			p.SourceTime != q.SourceTime || !bytes.Equal(p.Body, q.Body) {
			return false
		}
	}
	return true
}

func TestTelemetryBatchCodec(t *testing.T) {
	pts := []twingraph.TelemetryPoint{
		{Twin: "a", MessageID: "m1", Body: []byte(`{"x":1}`)},
		{Twin: "b", Component: "hvac", MessageID: "m2", SourceTime: "2024-05-01T10:00:00Z", Body: []byte(`{"fan":3}`)},
		{Twin: "a", MessageID: "m3", Body: []byte(`{}`)},
	}
	payload := encodeBatch(pts)
	got, err := decodeBatch(payload)
	if err != nil || !samePoints(got, pts) {
		t.Fatalf("decode = %+v, %v; want %+v", got, err, pts)
	}
	if n, err := twingraph.TelemetryBatchPoints(payload); n != 3 || err != nil {
		t.Fatalf("points = %d, %v; want 3", n, err)
	}
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"empty", nil},
		{"bad magic", append([]byte{0xB2}, payload[1:]...)},
		{"count beyond the payload", []byte{0xB1, 0x7f}},
		{"truncated", payload[:len(payload)-2]},
		{"trailing bytes", append(append([]byte(nil), payload...), 0)},
		{"count too small", append([]byte{0xB1, 2}, payload[2:]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeBatch(tc.payload); !errors.Is(err, twingraph.ErrTelemetryBatchCorrupt) {
				t.Fatalf("err = %v, want ErrTelemetryBatchCorrupt", err)
			}
		})
	}
}

func FuzzDecodeTelemetryBatch(f *testing.F) {
	f.Add(encodeBatch([]twingraph.TelemetryPoint{{Twin: "a", Body: []byte(`{"x":1}`)},
		{Twin: "b", Component: "c", MessageID: "m", SourceTime: "t", Body: []byte(`{}`)}}))
	f.Add([]byte{0xB1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, payload []byte) {
		pts, err := decodeBatch(payload)
		if err != nil {
			if !errors.Is(err, twingraph.ErrTelemetryBatchCorrupt) {
				t.Fatalf("err = %v, want ErrTelemetryBatchCorrupt", err)
			}
			return
		}
		if n, err := twingraph.TelemetryBatchPoints(payload); err != nil || n != len(pts) {
			t.Fatalf("TelemetryBatchPoints = %d, %v; decoded %d", n, err, len(pts))
		}
		// Varints may be non-minimal in the input, so compare points.
		again, err := decodeBatch(encodeBatch(pts))
		if err != nil || !samePoints(again, pts) {
			t.Fatalf("re-decode = %+v, %v; want %+v", again, err, pts)
		}
	})
}
