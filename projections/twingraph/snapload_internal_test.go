package twingraph

import (
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestUvarint checks the decoder's varints against encoding/binary: every
// length, minimal or not, truncated, overflowing, near the end of the
// data.
func TestUvarint(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var cases [][]byte
	for bitsN := 0; bitsN <= 64; bitsN++ {
		for range 20 {
			v := rng.Uint64()
			if bitsN < 64 {
				v &= 1<<bitsN - 1
			}
			cases = append(cases, binary.AppendUvarint(nil, v))
		}
	}
	cases = append(cases,
		[]byte{0x80, 0x00}, // non-minimal zero
		[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // 2^64-1
		[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, // overflow
		[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
		[]byte{0x80}, []byte{}, []byte{0xff, 0xff, 0xff},
	)
	for _, c := range cases {
		// With trailing bytes (the 8-byte load) and without.
		for _, tail := range [][]byte{nil, {0x01}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
			data := append(append([]byte{}, c...), tail...)
			want, n := binary.Uvarint(data)
			d := &snapDecoder{b: data}
			got := d.uvarint()
			if n <= 0 {
				if d.err == nil {
					t.Fatalf("% x: read %d, binary.Uvarint fails (%d)", data, got, n)
				}
				continue
			}
			if d.err != nil || got != want || d.i != n {
				t.Fatalf("% x: %d after %d bytes (err %v), want %d after %d", data, got, d.i, d.err, want, n)
			}
		}
	}
}

// FuzzFastPatch checks that fastPatch accepts exactly the payloads
// patchedFast applies, which foldTail counts on to change nothing before
// it knows the whole tail folds.
func FuzzFastPatch(f *testing.F) {
	for _, p := range []*TwinPatched{
		{ID: "a", SectionChange: SectionChange{Set: map[string]json.RawMessage{"t": json.RawMessage("1")}}},
		{ID: "a", Model: "m", SectionChange: SectionChange{Set: map[string]json.RawMessage{"t": json.RawMessage("1")}}},
		{ID: "a", SectionChange: SectionChange{Unset: []string{"t", "u"}, SourceTimes: map[string]string{"t": "x"}}},
		{ID: "a", Components: map[string]ComponentChange{"c": {Create: true}}},
		{ID: "a", SectionChange: SectionChange{Set: map[string]json.RawMessage{"a": nil, "b": nil, "c": nil, "d": nil, "e": nil, "f": nil, "g": nil, "h": nil, "i": nil}}},
	} {
		f.Add(NewPatchedEvent("twin/a", "x", p).Payload)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		tw := &Twin{ID: "a", Section: Section{Props: []Prop{{Name: "t", Value: "0"}}}}
		_, ok := tw.patchedFast(payload, 2, 3, 0, func(s string) string { return s })
		if got := fastPatch(payload); got != ok {
			t.Fatalf("%x: fastPatch %v, patchedFast %v", payload, got, ok)
		}
	})
}
