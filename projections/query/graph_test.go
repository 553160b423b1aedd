package query

import (
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// memGraph is a plain in-memory Graph for tests and benchmarks.
type memGraph struct {
	pos      uint64
	twins    map[string]*memTwin
	order    []*memTwin // id order
	byModel  map[string][]*memTwin
	out      map[string][]*memRel
	in       map[string][]*memRel
	models   []string
	extends  map[string][]string
	children map[string][]string
	// modelsVersion changes with every addModel, unique across graphs so
	// that one Cache may serve several test graphs.
	modelsVersion uint64
}

var modelsVersions atomic.Uint64

func (g *memGraph) ModelsVersion() uint64 { return g.modelsVersion }

type memTwin struct {
	id, model, etag string
	props           map[string]any
	meta            map[string]any
}

func (t *memTwin) ID() string    { return t.id }
func (t *memTwin) Model() string { return t.model }
func (t *memTwin) ETag() string  { return t.etag }
func (t *memTwin) Property(n string) (any, bool) {
	v, ok := t.props[n]
	return v, ok
}
func (t *memTwin) Metadata() map[string]any { return t.meta }
func (t *memTwin) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"$dtId":`...)
	dst = appendString(dst, t.id)
	dst = append(dst, `,"$etag":`...)
	dst = appendString(dst, t.etag)
	keys := make([]string, 0, len(t.props))
	for k := range t.props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		dst = append(dst, ',')
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendValue(dst, t.props[k])
	}
	dst = append(dst, `,"$metadata":`...)
	dst = appendValue(dst, t.meta)
	return append(dst, '}')
}

type memRel struct {
	id, src, name, dst, etag string
	props                    map[string]any
}

func (r *memRel) ID() string     { return r.id }
func (r *memRel) Source() string { return r.src }
func (r *memRel) Target() string { return r.dst }
func (r *memRel) Name() string   { return r.name }
func (r *memRel) ETag() string   { return r.etag }
func (r *memRel) Property(n string) (any, bool) {
	v, ok := r.props[n]
	return v, ok
}
func (r *memRel) AppendJSON(dst []byte) []byte {
	m := map[string]any{"$relationshipId": r.id, "$sourceId": r.src, "$targetId": r.dst, "$relationshipName": r.name, "$etag": r.etag}
	for k, v := range r.props {
		m[k] = v
	}
	return appendValue(dst, m)
}

func newMemGraph() *memGraph {
	return &memGraph{twins: map[string]*memTwin{}, byModel: map[string][]*memTwin{}, out: map[string][]*memRel{},
		in: map[string][]*memRel{}, extends: map[string][]string{}, children: map[string][]string{}}
}

func (g *memGraph) addModel(id string, extends ...string) {
	g.modelsVersion = modelsVersions.Add(1)
	if !slices.Contains(g.models, id) {
		g.models = append(g.models, id)
	}
	g.extends[id] = append(g.extends[id], extends...)
	for _, e := range extends {
		g.children[e] = append(g.children[e], id)
	}
}

func (g *memGraph) addTwin(id, model string, props map[string]any) {
	g.pos++
	t := &memTwin{id: id, model: model, etag: fmt.Sprintf(`W/"%d"`, g.pos), props: props, meta: map[string]any{"$model": model}}
	g.twins[id] = t
	g.byModel[model] = append(g.byModel[model], t)
}

func (g *memGraph) addRel(id, src, name, dst string, props map[string]any) {
	g.pos++
	r := &memRel{id: id, src: src, name: name, dst: dst, etag: fmt.Sprintf(`W/"%d"`, g.pos), props: props}
	g.out[src] = append(g.out[src], r)
	g.in[dst] = append(g.in[dst], r)
}

// seal sorts the indexes as the twin graph orders them.
func (g *memGraph) seal() {
	g.order = g.order[:0]
	for _, t := range g.twins {
		g.order = append(g.order, t)
	}
	byID := func(a, b *memTwin) int { return strings.Compare(a.id, b.id) }
	slices.SortFunc(g.order, byID)
	for _, ts := range g.byModel {
		slices.SortFunc(ts, byID)
	}
	for _, rs := range g.out {
		slices.SortFunc(rs, func(a, b *memRel) int { return strings.Compare(a.id, b.id) })
	}
	for _, rs := range g.in {
		slices.SortFunc(rs, func(a, b *memRel) int {
			if c := strings.Compare(a.src, b.src); c != 0 {
				return c
			}
			return strings.Compare(a.id, b.id)
		})
	}
	slices.Sort(g.models)
}

func (g *memGraph) Position() uint64 { return g.pos }
func (g *memGraph) Twin(id string) (Twin, bool) {
	t, ok := g.twins[id]
	if !ok {
		return nil, false
	}
	return t, true
}
func (g *memGraph) Twins() iter.Seq[Twin] {
	return func(yield func(Twin) bool) {
		for _, t := range g.order {
			if !yield(t) {
				return
			}
		}
	}
}
func (g *memGraph) TwinsOfModel(m string) iter.Seq[Twin] {
	return func(yield func(Twin) bool) {
		for _, t := range g.byModel[m] {
			if !yield(t) {
				return
			}
		}
	}
}
func (g *memGraph) Outgoing(src, name string) iter.Seq[Relationship] {
	return func(yield func(Relationship) bool) {
		for _, r := range g.out[src] {
			if name != "" && r.name != name {
				continue
			}
			if !yield(r) {
				return
			}
		}
	}
}
func (g *memGraph) Incoming(dst string) iter.Seq[Relationship] {
	return func(yield func(Relationship) bool) {
		for _, r := range g.in[dst] {
			if !yield(r) {
				return
			}
		}
	}
}
func (g *memGraph) Models() []string { return g.models }
func (g *memGraph) Descendants(m string) []string {
	var out []string
	var visit func(string)
	visit = func(id string) {
		for _, c := range g.children[id] {
			if !slices.Contains(out, c) {
				out = append(out, c)
				visit(c)
			}
		}
	}
	visit(m)
	slices.Sort(out)
	return out
}

const scenarios = "/work/shared/testdata/scenarios"

// loadExplorerGraph reads an ADT Explorer graph file and the DTDL models
// of dirs (and any embedded in the file).
func loadExplorerGraph(t testing.TB, path string, modelDirs ...string) *memGraph {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("scenario graph not available: %v", err)
	}
	var f struct {
		Graph struct {
			Twins []map[string]any `json:"digitalTwins"`
			Rels  []map[string]any `json:"relationships"`
		} `json:"digitalTwinsGraph"`
		Models []json.RawMessage `json:"digitalTwinsModels"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	g := newMemGraph()
	var docs []json.RawMessage
	docs = append(docs, f.Models...)
	for _, dir := range modelDirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, fn := range files {
			if strings.Contains(fn, "graph.json") || strings.HasSuffix(fn, "import.json") || strings.Contains(fn, "BulkImport") {
				continue
			}
			raw, err := os.ReadFile(fn)
			if err != nil {
				t.Fatal(err)
			}
			var arr []json.RawMessage
			if json.Unmarshal(raw, &arr) == nil {
				docs = append(docs, arr...)
			} else {
				docs = append(docs, raw)
			}
		}
	}
	for _, d := range docs {
		var m struct {
			ID      string          `json:"@id"`
			Extends json.RawMessage `json:"extends"`
		}
		if json.Unmarshal(d, &m) != nil || m.ID == "" {
			continue
		}
		var ext []string
		if len(m.Extends) > 0 {
			var one string
			if json.Unmarshal(m.Extends, &one) == nil {
				ext = []string{one}
			} else {
				json.Unmarshal(m.Extends, &ext)
			}
		}
		g.addModel(m.ID, ext...)
	}
	for _, tw := range f.Graph.Twins {
		id, _ := tw["$dtId"].(string)
		meta, _ := tw["$metadata"].(map[string]any)
		model, _ := meta["$model"].(string)
		props := map[string]any{}
		for k, v := range tw {
			if !strings.HasPrefix(k, "$") {
				props[k] = v
			}
		}
		g.addTwin(id, model, props)
		if e, ok := tw["$etag"].(string); ok {
			g.twins[id].etag = e
		}
		if meta != nil {
			g.twins[id].meta = meta
		}
	}
	for _, r := range f.Graph.Rels {
		props := map[string]any{}
		for k, v := range r {
			if !strings.HasPrefix(k, "$") {
				props[k] = v
			}
		}
		str := func(k string) string { s, _ := r[k].(string); return s }
		g.addRel(str("$relationshipId"), str("$sourceId"), str("$relationshipName"), str("$targetId"), props)
	}
	g.seal()
	return g
}
