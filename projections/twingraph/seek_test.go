package twingraph

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestTwinSeeker looks ids up in ascending, descending and random order,
// present or not, and checks each answer against Snapshot.Twin.
func TestTwinSeeker(t *testing.T) {
	var twins []*Twin
	for i := range 5000 {
		twins = append(twins, &Twin{ID: fmt.Sprintf("t-%05d", 2*i), Model: "m"})
	}
	s := &Snapshot{twins: buildTwinTrees(twins)}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		id   func(i int) int
	}{
		{"ascending", func(i int) int { return i }},
		{"ascending with gaps", func(i int) int { return i * 37 }},
		{"descending", func(i int) int { return 10000 - i }},
		{"random", func(int) int { return rng.IntN(10002) }},
		{"runs", func(i int) int { return (i%20)*500 + i/20 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := s.TwinSeeker()
			for i := range 3000 {
				id := fmt.Sprintf("t-%05d", tc.id(i))
				got, ok := k.Twin(id)
				want, wantOK := s.Twin(id)
				if ok != wantOK || got != want {
					t.Fatalf("lookup %d of %s = %v %v, want %v %v", i, id, got, ok, want, wantOK)
				}
			}
		})
	}
}
