package twingraph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// render is every twin's JSON and stream version, and every relationship,
// outgoing and incoming, of a graph.
func render(g *twingraph.Graph) string {
	var b strings.Builder
	snap := g.Snapshot()
	fmt.Fprintf(&b, "position %d models %d\n", snap.Position(), snap.ModelsVersion())
	for t := range snap.Twins() {
		b.Write(t.AppendJSON(nil))
		fmt.Fprintf(&b, " %s v%d\n", t.ETag(), t.Version)
		for _, r := range t.Out {
			b.Write(r.AppendJSON(nil))
			b.WriteByte('\n')
		}
		for _, r := range t.In {
			fmt.Fprintf(&b, "in %s/%s\n", r.Source, r.ID)
		}
	}
	for m := range snap.ModelRecords() {
		fmt.Fprintf(&b, "model %s %d %d %v %d\n", m.ID, m.Position, m.Uploaded, m.Decommissioned, len(m.Definition))
	}
	for _, m := range []string{"dtmi:bench:Room;1", "dtmi:bench:Sensor;1"} {
		n := 0
		for range snap.TwinsOfModel(m, false) {
			n++
		}
		fmt.Fprintf(&b, "%s: %d\n", m, n)
	}
	return b.String()
}

// patches returns twin.patched events for rooms of the building graph,
// continuing at position pos.
func patches(t testing.TB, pos uint64, n int) []event.Event {
	g := &gen{t: t, pos: pos}
	for i := range n {
		id := fmt.Sprintf("b0-f%d-r%d", i%10, i%20)
		g.add(twingraph.TwinStream(id), twingraph.TypeTwinPatched, &twingraph.TwinPatched{ID: id,
			Patch:         raw(`[{"op":"replace","path":"/temperature","value":1}]`),
			SectionChange: twingraph.SectionChange{Set: map[string]json.RawMessage{"temperature": raw(fmt.Sprint(20 + i))}}})
	}
	return g.events
}

func snapshotBytes(t testing.TB, g *twingraph.Graph) []byte {
	var buf bytes.Buffer
	n, err := twingraph.WriteSnapshot(&buf, g.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteSnapshot returned %d, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

func TestSnapshotRoundTrip(t *testing.T) {
	events, _, _ := buildingGraph(t, 2)
	events = append(events, patches(t, uint64(len(events)), 300)...)
	full := twingraph.New(twingraph.Options{})
	apply(t, full, events, 1000)
	want := render(full)
	for _, cut := range []int{0, 1, 2, 500, len(events) - 300, len(events) - 1, len(events)} {
		g := twingraph.New(twingraph.Options{})
		apply(t, g, events[:cut], 700)
		data := snapshotBytes(t, g)
		loaded, err := twingraph.LoadSnapshot(bytes.NewReader(data), twingraph.Options{})
		if err != nil {
			t.Fatalf("cut=%d: %v", cut, err)
		}
		if got, want := render(loaded), render(g); got != want {
			t.Fatalf("cut=%d: loaded graph differs", cut)
		}
		apply(t, loaded, events[cut:], 333)
		if got := render(loaded); got != want {
			t.Fatalf("cut=%d: snapshot + tail differs from a full replay", cut)
		}
		// The same state gives the same bytes.
		if again := snapshotBytes(t, loaded); cut == len(events) && !bytes.Equal(again, data) {
			t.Fatalf("cut=%d: snapshot of the loaded graph differs", cut)
		}
	}
}

func TestSnapshotCorrupt(t *testing.T) {
	events, _, _ := buildingGraph(t, 1)
	g := twingraph.New(twingraph.Options{})
	apply(t, g, events[:200], 1000)
	data := snapshotBytes(t, g)
	for n := 0; n < len(data); n += 1 + n/64 {
		if _, err := twingraph.LoadSnapshot(bytes.NewReader(data[:n]), twingraph.Options{}); !errors.Is(err, twingraph.ErrCorruptSnapshot) {
			t.Fatalf("truncated to %d: err=%v, want ErrCorruptSnapshot", n, err)
		}
	}
	for i := 0; i < len(data); i += 1 + i/64 {
		bad := bytes.Clone(data)
		bad[i] ^= 0x10
		if _, err := twingraph.LoadSnapshot(bytes.NewReader(bad), twingraph.Options{}); !errors.Is(err, twingraph.ErrCorruptSnapshot) {
			t.Fatalf("byte %d flipped: err=%v, want ErrCorruptSnapshot", i, err)
		}
	}
	if _, err := twingraph.LoadSnapshot(bytes.NewReader(append(bytes.Clone(data), 0)), twingraph.Options{}); !errors.Is(err, twingraph.ErrCorruptSnapshot) {
		t.Fatalf("trailing byte: err=%v", err)
	}
}

func FuzzLoadSnapshot(f *testing.F) {
	events, _, _ := buildingGraph(f, 1)
	g := twingraph.New(twingraph.Options{})
	apply(f, g, events[:120], 1000)
	f.Add(snapshotBytes(f, g))
	f.Add(snapshotBytes(f, twingraph.New(twingraph.Options{})))
	f.Add([]byte("TLGSNAP\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Every loader loads what the others do, the same way.
		var first string
		for i, l := range loaders {
			g, err := load(t, data, l.view, l.parallel, l.block)
			if err != nil {
				if !errors.Is(err, twingraph.ErrCorruptSnapshot) {
					t.Fatalf("%s: error not ErrCorruptSnapshot: %v", l.name, err)
				}
				if i > 0 && first != "" {
					t.Fatalf("%s: %v; %s loaded it", l.name, err, loaders[0].name)
				}
				continue
			}
			if i > 0 && first == "" {
				t.Fatalf("%s: loaded; %s did not", l.name, loaders[0].name)
			}
			// Whatever loads writes back to the same bytes.
			if again := snapshotBytes(t, g); !bytes.Equal(again, data) {
				t.Fatalf("%s: loaded snapshot does not round-trip", l.name)
			}
			if r := render(g); i == 0 {
				first = r
			} else if r != first {
				t.Fatalf("%s: loaded a different graph than %s", l.name, loaders[0].name)
			}
		}
	})
}

func TestSnapshotter(t *testing.T) {
	events, _, _ := buildingGraph(t, 1)
	dir := t.TempDir()
	g := twingraph.New(twingraph.Options{})
	s, err := twingraph.NewSnapshotter(dir, g, twingraph.SnapshotterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var positions []uint64
	for _, n := range []int{100, 200, 300, 400} {
		apply(t, g, events[g.Position():n], 1000)
		pos, err := s.Take()
		if err != nil {
			t.Fatal(err)
		}
		positions = append(positions, pos)
	}
	if _, err := s.Take(); err != nil { // nothing new: no file
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 2 {
		t.Fatalf("files=%v, want the newest 2", files)
	}
	ctx := context.Background()
	loaded, err := twingraph.LoadNewest(ctx, dir, 1000, twingraph.Options{}, nil)
	if err != nil || loaded.Position() != 400 {
		t.Fatalf("LoadNewest at %d: %v, want 400", loaded.Position(), err)
	}
	// A snapshot beyond the log head is skipped.
	if loaded, _ := twingraph.LoadNewest(ctx, dir, 399, twingraph.Options{}, nil); loaded.Position() != 300 {
		t.Fatalf("head 399: loaded %d, want 300", loaded.Position())
	}
	// A damaged newest snapshot falls back to the older one, and with
	// both damaged to an empty graph.
	newest := files[len(files)-1]
	data, _ := os.ReadFile(newest)
	data[len(data)/2] ^= 1
	os.WriteFile(newest, data, 0o644)
	if loaded, _ := twingraph.LoadNewest(ctx, dir, 1000, twingraph.Options{}, nil); loaded.Position() != 300 {
		t.Fatalf("damaged newest: loaded %d, want 300", loaded.Position())
	}
	os.WriteFile(files[0], []byte("garbage"), 0o644)
	if loaded, _ := twingraph.LoadNewest(ctx, dir, 1000, twingraph.Options{}, nil); loaded.Position() != 0 {
		t.Fatalf("both damaged: loaded %d, want 0", loaded.Position())
	}
}

// BenchmarkSnapshot writes and loads a snapshot of the standard graph
// shape and reports the time per object (twin or relationship).
func BenchmarkSnapshot(b *testing.B) {
	events, nt, nr := buildingGraph(b, 10)
	g := twingraph.New(twingraph.Options{})
	apply(b, g, events, 4096)
	data := snapshotBytes(b, g)
	b.Run("op=write", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			snapshotBytes(b, g)
		}
		b.ReportMetric(float64(nt+nr)*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
		b.ReportMetric(float64(len(data))/float64(nt+nr), "B/object")
	})
	b.Run("op=load", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := twingraph.LoadSnapshot(bytes.NewReader(data), twingraph.Options{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(nt+nr)*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
	})
}
