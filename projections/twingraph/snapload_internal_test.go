package twingraph

import (
	"encoding/binary"
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
