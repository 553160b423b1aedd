package abi

import (
	"bytes"
	"reflect"
	"testing"
)

func sampleBatch() []Event {
	return []Event{
		{Position: 7, Time: 1700000000000000000, Seed: Seed(7), Hop: 0, Kind: KindTelemetry, Type: "telemetry",
			Twin: "sensor-1", Model: "dtmi:ex:Sensor;1", Payload: []byte(`{"reading":21.5}`)},
		{Position: 9, Time: -1, Seed: Seed(9), Hop: 3, Kind: KindTwinPatched, Type: "twin.patched", Twin: "room-1",
			Model: "dtmi:ex:Room;1", Component: "c", Relationship: "contains", Changed: []string{"comfort", "temperature"},
			Payload: []byte(`[{"op":"add","path":"/comfort","value":1}]`)},
		{Kind: KindOther},
	}
}

func encode(evs []Event) []byte {
	b := AppendBatchHeader(nil, len(evs))
	for i := range evs {
		b = AppendEvent(b, &evs[i])
	}
	return b
}

func decode(b []byte) ([]Event, error) {
	r := NewReader(b, nil)
	n, err := r.Batch()
	if err != nil {
		return nil, err
	}
	out := make([]Event, n)
	for i := range out {
		if err := r.Event(&out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// normalize makes empty and nil slices compare equal.
func normalize(evs []Event) {
	for i := range evs {
		if len(evs[i].Changed) == 0 {
			evs[i].Changed = nil
		}
		if len(evs[i].Payload) == 0 {
			evs[i].Payload = nil
		}
	}
}

func TestBatchRoundTrip(t *testing.T) {
	want := sampleBatch()
	got, err := decode(encode(want))
	if err != nil {
		t.Fatal(err)
	}
	normalize(got)
	normalize(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	size := BatchHeaderSize
	for i := range want {
		size += EventSize(&want[i])
	}
	if n := len(encode(want)); n != size {
		t.Fatalf("encoding of %d bytes, EventSize says %d", n, size)
	}
	for i := range len(encode(want)) {
		if _, err := decode(encode(want)[:i]); err == nil {
			t.Fatalf("a batch truncated to %d bytes decoded", i)
		}
	}
}

func TestRelationshipsRoundTrip(t *testing.T) {
	want := []Relationship{{"r1", "contains", "room-1"}, {"", "", ""}}
	got, err := NewReader(AppendRelationships(nil, want), nil).Relationships()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
}

// FuzzBatch decodes arbitrary bytes as a batch: it must not panic or
// allocate without bound, and what decodes must encode back to the same
// bytes.
func FuzzBatch(f *testing.F) {
	f.Add(encode(sampleBatch()))
	f.Add(encode(nil))
	f.Add([]byte{1, 0, 0, 0, 255, 255, 255, 255})
	f.Add(AppendRelationships(nil, []Relationship{{"a", "b", "c"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		NewReader(b, nil).Relationships()
		evs, err := decode(b)
		if err != nil {
			return
		}
		// A decoded batch re-encodes to the bytes it was read from, up
		// to trailing bytes the reader did not consume.
		again := encode(evs)
		if !bytes.HasPrefix(b, again) {
			t.Fatalf("re-encoded %x, input %x", again, b)
		}
		evs2, err := decode(again)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		normalize(evs)
		normalize(evs2)
		if !reflect.DeepEqual(evs, evs2) {
			t.Fatalf("decode(encode(x)) != x:\n%+v\n%+v", evs, evs2)
		}
	})
}
