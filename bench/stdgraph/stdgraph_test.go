package stdgraph

import (
	"encoding/json"
	"testing"
)

func TestCountsAndDeterminism(t *testing.T) {
	if got := (Config{}).Twins(); got != 1_011_000 {
		t.Fatalf("full graph twins = %d, want 1011000", got)
	}
	if got := (Config{}).Relationships(); got != 2_009_000 {
		t.Fatalf("full graph relationships = %d, want 2009000", got)
	}
	cfg := Config{Buildings: 3, Floors: 2, Rooms: 3, Sensors: 2, Seed: 7}
	run := func() (twins []Twin, rels []Relationship) {
		seen := map[string]bool{}
		err := Generate(cfg, func(tw Twin) error {
			if seen[tw.ID] {
				t.Fatalf("duplicate twin %s", tw.ID)
			}
			seen[tw.ID] = true
			twins = append(twins, tw)
			return nil
		}, func(r Relationship) error {
			if !seen[r.Source] || !seen[r.Target] {
				t.Fatalf("relationship %s emitted before its ends", r.ID)
			}
			rels = append(rels, r)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	t1, r1 := run()
	t2, _ := run()
	if len(t1) != cfg.Twins() || len(r1) != cfg.Relationships() {
		t.Fatalf("generated %d twins, %d rels; want %d, %d", len(t1), len(r1), cfg.Twins(), cfg.Relationships())
	}
	a, _ := json.Marshal(t1)
	b, _ := json.Marshal(t2)
	if string(a) != string(b) {
		t.Fatal("generation is not deterministic")
	}
	for _, m := range Models() {
		if !json.Valid(m) {
			t.Fatalf("invalid model JSON: %s", m)
		}
	}
}
