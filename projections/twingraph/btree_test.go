package twingraph

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestBtree checks random transactions of puts and deletes against a map,
// and that every committed tree keeps its contents after later writes.
func TestBtree(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys int
		bulk int
	}{
		{name: "small", keys: 50},
		{name: "large", keys: 5000},
		{name: "bulk", keys: 5000, bulk: 3000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			want := map[string]int{}
			tr := newBtree[string, int](strings.Compare)
			if tc.bulk > 0 {
				var ks []string
				for i := range tc.bulk {
					ks = append(ks, fmt.Sprintf("k%06d", i*3))
				}
				vs := make([]int, len(ks))
				for i, k := range ks {
					vs[i] = i
					want[k] = i
				}
				tr = buildBtree(strings.Compare, ks, vs)
			}
			type version struct {
				tree btree[string, int]
				want map[string]int
			}
			var versions []version
			for range 200 {
				tx := tr.Txn()
				for range rng.IntN(100) + 1 {
					k := fmt.Sprintf("k%06d", rng.IntN(tc.keys*3))
					if rng.IntN(3) == 0 {
						_, ok := tx.Delete(k)
						if _, had := want[k]; ok != had {
							t.Fatalf("delete %s = %v, want %v", k, ok, had)
						}
						delete(want, k)
					} else {
						v := rng.Int()
						old, ok := tx.Put(k, v)
						if w, had := want[k]; ok != had || (ok && old != w) {
							t.Fatalf("put %s = %d %v, want %d %v", k, old, ok, w, had)
						}
						want[k] = v
					}
				}
				tr = tx.Commit()
				versions = append(versions, version{tr, maps.Clone(want)})
			}
			for i, v := range versions {
				check(t, i, v.tree, v.want)
			}
		})
	}
}

func check(t *testing.T, i int, tr btree[string, int], want map[string]int) {
	t.Helper()
	if tr.Len() != len(want) {
		t.Fatalf("version %d: len %d, want %d", i, tr.Len(), len(want))
	}
	keys := slices.Sorted(maps.Keys(want))
	var got []string
	tr.Ascend("", true, func(k string, v int) bool {
		if want[k] != v {
			t.Fatalf("version %d: %s = %d, want %d", i, k, v, want[k])
		}
		got = append(got, k)
		return true
	})
	if !slices.Equal(got, keys) {
		t.Fatalf("version %d: keys differ", i)
	}
	for _, k := range keys {
		if v, ok := tr.Get(k); !ok || v != want[k] {
			t.Fatalf("version %d: get %s = %d %v", i, k, v, ok)
		}
		if v, ok := getStr(tr, k); !ok || v != want[k] {
			t.Fatalf("version %d: getStr %s = %d %v", i, k, v, ok)
		}
		// Absent keys just before and after k, and a prefix of it.
		for _, a := range []string{k + "\x00", k[:len(k)-1], k[:len(k)-1] + "\xff"} {
			_, had := want[a]
			if _, ok := getStr(tr, a); ok != had {
				t.Fatalf("version %d: getStr %q found %v, want %v", i, a, ok, had)
			}
		}
	}
	if _, ok := getStr(tr, ""); ok {
		t.Fatalf("version %d: getStr found the empty key", i)
	}
	if len(keys) > 2 {
		from := keys[len(keys)/2]
		var n int
		tr.Ascend(from+"0", false, func(k string, _ int) bool { n++; return true })
		if n != len(keys)-len(keys)/2-1 {
			t.Fatalf("version %d: ascend from %s: %d keys, want %d", i, from, n, len(keys)-len(keys)/2-1)
		}
	}
}

func TestFindNear(t *testing.T) {
	var twins []*Twin
	for i := range 100 {
		twins = append(twins, &Twin{ID: fmt.Sprintf("t%03d", i*2)})
	}
	for from := range twins {
		for i := range 200 {
			id := fmt.Sprintf("t%03d", i)
			want := -1
			if i%2 == 0 {
				want = i / 2
			}
			if got := findNear(twins, id, from); got != want {
				t.Fatalf("findNear(%s, from %d) = %d, want %d", id, from, got, want)
			}
		}
		if got := findNear(twins, "u", from); got != -1 {
			t.Fatalf("findNear(u, from %d) = %d, want -1", from, got)
		}
	}
}

// TestSeeker checks ascending lookups through a seeker against Get, for
// keys present and absent, near and far apart, in trees of every depth.
func TestSeeker(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 31, 33, 1000, 40000} {
		ks := make([]string, n)
		vs := make([]int, n)
		for i := range n {
			ks[i], vs[i] = fmt.Sprintf("k%07d", i*2), i
		}
		// A bulk-built tree, then one changed by transactions (uneven
		// nodes).
		trees := []btree[string, int]{buildBtree(strings.Compare, ks, vs)}
		tx := trees[0].Txn()
		for range n / 3 {
			tx.Delete(fmt.Sprintf("k%07d", rng.IntN(2*n+1)))
			tx.Put(fmt.Sprintf("k%07d", rng.IntN(2*n+1)), -1)
		}
		trees = append(trees, tx.Commit())
		for ti, tr := range trees {
			for _, step := range []int{1, 2, 7, 64, 5000} {
				s := tr.seeker(strEq)
				for i := 0; i <= 2*n+2; i += 1 + rng.IntN(step) {
					k := fmt.Sprintf("k%07d", i)
					got, ok := s.get(k)
					want, wok := tr.Get(k)
					if got != want || ok != wok {
						t.Fatalf("n=%d tree %d step %d: seek %s = %d %v, want %d %v", n, ti, step, k, got, ok, want, wok)
					}
				}
			}
		}
	}
}

// BenchmarkGet compares a lookup through the tree's comparison function
// with getStr, in a tree of 100,000 twin-like ids. One op is 4,096
// lookups of random ids, so that a run at -benchtime 1x still measures;
// ns/lookup is the figure.
func BenchmarkGet(b *testing.B) {
	ks := make([]string, 100_000)
	for i := range ks {
		ks[i] = fmt.Sprintf("dtmi-building-%03d-floor-%02d-room-%04d", i/1000, i/100%10, i)
	}
	slices.Sort(ks)
	tr := buildBtree(strings.Compare, ks, make([]int, len(ks)))
	rng := rand.New(rand.NewPCG(1, 2))
	probe := make([]string, 4096)
	for i := range probe {
		probe[i] = strings.Clone(ks[rng.IntN(len(ks))])
	}
	for _, via := range []struct {
		name string
		get  func(string) (int, bool)
	}{
		{"cmp", tr.Get},
		{"getStr", func(k string) (int, bool) { return getStr(tr, k) }},
	} {
		b.Run("via="+via.name, func(b *testing.B) {
			for b.Loop() {
				for _, k := range probe {
					if _, ok := via.get(k); !ok {
						b.Fatal("missing")
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(probe)), "ns/lookup")
		})
	}
}
