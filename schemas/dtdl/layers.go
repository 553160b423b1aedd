package dtdl

import "strings"

// Layers are partial definitions of an element: a top-level Interface co-typed
// Layer, in the layering extension context, whose @id is the identifier of
// the element it adds to with a "#layer" fragment. DTDL v2 and v3 do not
// allow fragments in identifiers, so every layer is refused with invalidId,
// but, as in the reference parser, its definitions are still merged into the
// elements they extend so that the problems the merge would raise are
// reported too: conflicting values (inconsistent*Values), incompatible or
// missing classes, a changed parent or DTDL version, and whatever the merged
// element fails when it is parsed (a third extends, a name used twice).
//
// The merge works on the JSON trees before elements are parsed: the layer's
// values are added to the base element's node, new contents appended, and the
// base is then parsed as one definition. The layer itself is parsed only to
// report its identifier.

// layerSite is an element node with an explicit @id in a base (non-layer)
// tree.
type layerSite struct {
	n       *node
	parent  string // @id of the nearest enclosing element with one, or ""
	doc     int
	version int
}

// layerMerger holds the state of one merge pass.
type layerMerger struct {
	p     *parser
	sites map[string]*layerSite
	doc   int // document of the layer being merged
	base  int // document of the base element it is merged into
}

// treeVersion returns the DTDL version a top-level @context names, or 0.
func treeVersion(n *node) int {
	for _, c := range values(n.get("@context")) {
		if c.kind != jString {
			continue
		}
		switch c.str {
		case "dtmi:dtdl:context;2":
			return 2
		case "dtmi:dtdl:context;3":
			return 3
		}
	}
	return 0
}

// isTopLayer reports whether a top-level node is a layer: in the layering
// context, co-typed Layer, with a fragment identifier of a valid base. An
// empty fragment names the base layer, the element's own definition.
func isTopLayer(n *node) (base, frag string, ok bool) {
	layering := false
	for _, c := range values(n.get("@context")) {
		if c.kind == jString && strings.HasPrefix(c.str, "dtmi:dtdl:extension:layering;") {
			layering = true
		}
	}
	id := n.get("@id")
	if !layering || id == nil || id.kind != jString || !isLayer(n) {
		return "", "", false
	}
	base, frag, hasFrag := strings.Cut(id.str, "#")
	if !hasFrag {
		return "", "", false
	}
	if _, valid := ParseDTMI(base); !valid {
		return "", "", false
	}
	return base, frag, true
}

// mergeLayers merges every top-level layer of the batch into the base
// elements it extends. trees holds the top-level objects of each document.
func (p *parser) mergeLayers(trees [][]*node) {
	type layer struct {
		n         *node
		doc       int
		base, key string
	}
	var layers []layer
	// seen holds the layers defined so far; the base layer (an empty
	// fragment) of an element is its top-level definition.
	var seen map[[2]string]bool
	for doc, ns := range trees {
		for _, n := range ns {
			base, frag, ok := isTopLayer(n)
			if !ok {
				continue
			}
			if seen == nil {
				seen = map[[2]string]bool{}
				for _, ns := range trees {
					for _, n := range ns {
						if _, _, layer := isTopLayer(n); layer {
							continue
						}
						if id := n.get("@id"); id != nil && id.kind == jString {
							seen[[2]string{id.str, ""}] = true
						}
					}
				}
			}
			key := base + "#" + frag
			if seen[[2]string{base, frag}] {
				p.doc = doc
				p.addf("duplicateDefinition", base, "@id", n, "layer %s is defined more than once", key)
				continue
			}
			seen[[2]string{base, frag}] = true
			if frag != "" {
				layers = append(layers, layer{n, doc, base, key})
			}
		}
	}
	if len(layers) == 0 {
		return
	}
	m := &layerMerger{p: p, sites: map[string]*layerSite{}}
	for doc, ns := range trees {
		for _, n := range ns {
			if _, _, ok := isTopLayer(n); !ok {
				m.index(n, "", doc, treeVersion(n), 0)
			}
		}
	}
	saved := p.doc
	for _, l := range layers {
		m.doc = l.doc
		p.doc = l.doc
		if site, ok := m.sites[l.base]; ok && site.parent == "" {
			if v := treeVersion(l.n); v != 0 && site.version != 0 && v != site.version {
				p.addf("inconsistentContext", l.base, "@context", l.n, "layer %s is DTDL v%d but its base is DTDL v%d", l.key, v, site.version)
				continue
			}
			m.base = site.doc
			addContexts(site.n, l.n.get("@context"))
			m.merge(site, l.n, "", "", l.base)
			continue
		}
		// No base in the batch: its nested definitions may still extend
		// elements defined elsewhere.
		m.nested(l.n, l.base, 0)
	}
	p.doc = saved
}

// index records the identified elements of a base tree.
func (m *layerMerger) index(n *node, parent string, doc, version, depth int) {
	if n.kind != jObject || depth > maxJSONDepth {
		return
	}
	id := parent
	if idn := n.get("@id"); idn != nil && idn.kind == jString {
		if _, dup := m.sites[idn.str]; !dup {
			m.sites[idn.str] = &layerSite{n: n, parent: parent, doc: doc, version: version}
		}
		id = idn.str
	}
	for _, mb := range n.obj {
		if strings.HasPrefix(mb.key, "@") {
			continue
		}
		for _, c := range values(mb.val) {
			m.index(c, id, doc, version, depth+1)
		}
	}
}

// nested merges the identified elements inside a layer whose enclosing
// element is not merged.
func (m *layerMerger) nested(n *node, parent string, depth int) {
	if depth > maxJSONDepth {
		return
	}
	for _, mb := range n.obj {
		if strings.HasPrefix(mb.key, "@") {
			continue
		}
		for _, c := range values(mb.val) {
			if c.kind != jObject {
				continue
			}
			id := strippedID(c)
			if site, ok := m.sites[id]; ok && id != "" {
				m.base = site.doc
				m.merge(site, c, parent, mb.key, parent)
				continue
			}
			next := parent
			if id != "" {
				next = id
			}
			m.nested(c, next, depth+1)
		}
	}
}

// strippedID returns the @id of a node without a layer fragment, or "".
func strippedID(n *node) string {
	idn := n.get("@id")
	if idn == nil || idn.kind != jString {
		return ""
	}
	if isLayer(n) {
		base, _, _ := strings.Cut(idn.str, "#")
		return base
	}
	return idn.str
}

// materialClass returns the material class a node's @type names, or "".
func materialClass(n *node, v int) string {
	for _, t := range values(n.get("@type")) {
		if t.kind != jString {
			continue
		}
		if name, ok := classTerm(t.str, v); ok {
			return name
		}
	}
	return ""
}

// merge adds the definition src, found in property prop of the element
// parent of a layer, to the base element at site. owner is the element that
// holds src, for diagnostics.
func (m *layerMerger) merge(site *layerSite, src *node, parent, prop, owner string) {
	p := m.p
	id := strippedID(src)
	if id == "" {
		id = owner
	}
	v := site.version
	dc, sc := materialClass(site.n, v), materialClass(src, v)
	if src.get("@type") == nil {
		sc = inferredClass(prop, v)
	}
	switch {
	case sc == "" && src.get("@type") == nil:
		p.addf("badType", owner, prop, src, "layer definition of %s in %q has no @type", id, prop)
		return
	case sc == "":
		if m.doc > site.doc {
			p.addf("layerMissingMaterialType", id, "@type", src, "layer definition of %s names no material class", id)
		} else {
			p.addf("badType", owner, prop, src, "layer definition of %s names no DTDL class allowed for %q", id, prop)
		}
		if requiredMember[prop] {
			p.addf("objectCountBelowMin", owner, prop, src, "%q has no valid value", prop)
		}
		return
	case dc != "" && sc != dc:
		if dc == "Interface" || sc == "Interface" {
			p.addf("incompatibleType", owner, prop, src, "%s is a %s, not a %s", id, dc, sc)
			if requiredMember[prop] && m.doc > site.doc {
				p.addf("objectCountBelowMin", owner, prop, src, "%q has no valid value", prop)
			}
		} else {
			p.addf("multipleMaterialTypes", id, "@type", src, "%s is both a %s and a %s", id, dc, sc)
		}
		return
	}
	if site.parent != parent && prop != "" {
		p.addf("inconsistentParent", id, "@id", src, "%s is defined in %s and in %s", id, site.parent, parent)
		return
	}
	// Each definition must be complete on its own.
	if namedClasses[sc] && src.get("name") == nil {
		p.addf("missingLiteralProperty", id, "name", src, "a %s requires a name", sc)
	}
	if schemaClasses[sc] && src.get("schema") == nil {
		p.addf("missingObjectProperty", id, "schema", src, "a %s requires a schema", sc)
	}
	m.mergeObject(site.n, src, id, v)
}

// inferredClass is the class of an element without @type in prop, or "".
func inferredClass(prop string, v int) string {
	switch {
	case (prop == "request" || prop == "response") && v == 2:
		return "CommandPayload"
	case prop == "request":
		return "CommandRequest"
	case prop == "response":
		return "CommandResponse"
	}
	return ""
}

// namedClasses and schemaClasses are the classes that require a name and a
// schema.
var (
	namedClasses = map[string]bool{
		"Property": true, "Telemetry": true, "Command": true, "Relationship": true, "Component": true,
		"CommandPayload": true, "CommandRequest": true, "CommandResponse": true, "EnumValue": true, "Field": true,
		"MapKey": true, "MapValue": true,
	}
	schemaClasses = map[string]bool{
		"Property": true, "Telemetry": true, "Component": true, "CommandPayload": true, "CommandRequest": true,
		"CommandResponse": true, "Field": true, "MapKey": true, "MapValue": true,
	}
)

// mergeObject merges the keys of src into dst, both definitions of the
// element id.
func (m *layerMerger) mergeObject(dst, src *node, id string, v int) {
	p := m.p
	for _, mb := range src.obj {
		k := mb.key
		switch k {
		case "@id", "@context":
			continue
		case "@type":
			m.mergeTypes(dst, mb.val)
			continue
		}
		if strings.HasPrefix(k, "@") {
			dst.obj = append(dst.obj, member{k, m.copyNode(mb.val, id, k)})
			continue
		}
		cur := dst.get(k)
		if cur == nil {
			// A definition must be complete on its own: a layer does not
			// supply what its base lacks.
			if requiredMember[k] || k == "name" {
				continue
			}
			if c := m.copyNode(mb.val, id, k); c != nil {
				dst.obj = append(dst.obj, member{k, c})
				p.markLayered(c)
			}
			continue
		}
		switch {
		case k == "displayName" || k == "description":
			if !sameLangStrings(cur, mb.val) {
				p.addf("inconsistentLangStringValues", id, k, mb.val, "%q differs between the definitions of %s", k, id)
			}
		case multiValued[k]:
			m.mergeList(dst, k, mb.val, id, v)
		case objectProps[k]:
			m.mergeSingular(dst, k, cur, mb.val, id, v)
		default:
			if !sameLiteral(cur, mb.val) {
				code := "inconsistentStringValues"
				switch {
				case identifierProps[k]:
					code = "inconsistentIdentifierValues"
				case cur.kind == jBool:
					code = "inconsistentBooleanValues"
				case cur.kind == jNumber:
					code = "inconsistentIntegerValues"
				}
				p.addf(code, id, k, mb.val, "%q differs between the definitions of %s", k, id)
			}
		}
	}
}

// multiValued lists the properties whose values are a set of elements.
var multiValued = map[string]bool{
	"contents": true, "schemas": true, "extends": true, "fields": true, "enumValues": true, "properties": true,
}

// objectProps lists the singular properties whose value is an element.
var objectProps = map[string]bool{
	"schema": true, "elementSchema": true, "mapKey": true, "mapValue": true, "valueSchema": true,
	"request": true, "response": true, "unit": true,
}

// identifierProps lists the properties whose value is an identifier.
var identifierProps = map[string]bool{"target": true}

// mergeTypes adds the co-types of a layer definition to dst's @type.
func (m *layerMerger) mergeTypes(dst, types *node) {
	tn := dst.get("@type")
	if tn == nil {
		return
	}
	have := map[string]bool{}
	for _, t := range values(tn) {
		have[t.str] = true
	}
	var add []*node
	for _, t := range values(types) {
		if t.kind == jString && !have[t.str] && t.str != "Layer" {
			have[t.str] = true
			add = append(add, t)
		}
	}
	if len(add) == 0 {
		return
	}
	merged := &node{kind: jArray, line: tn.line, arr: append(append([]*node(nil), values(tn)...), add...)}
	for i := range dst.obj {
		if dst.obj[i].key == "@type" {
			dst.obj[i].val = merged
		}
	}
}

// mergeList merges the values of a multi-valued property: an element with
// the identity of an existing one extends it, others are added.
func (m *layerMerger) mergeList(dst *node, k string, val *node, id string, v int) {
	cur := dst.get(k)
	list := append([]*node(nil), values(cur)...)
	for _, x := range values(val) {
		if x.kind != jObject {
			if x.kind == jString && containsString(list, x.str) {
				continue
			}
			list = append(list, x)
			continue
		}
		if match := findSame(list, x); match != nil {
			xid := strippedID(x)
			if xid == "" {
				if name := x.get("name"); name != nil && name.kind == jString {
					xid = autoID(id, k, name.str)
				}
			}
			site := &layerSite{n: match, parent: id, doc: m.base, version: v}
			if s, ok := m.sites[xid]; ok {
				site.doc = s.doc
			}
			m.merge(site, x, id, k, id)
			continue
		}
		if xid := strippedID(x); xid != "" {
			if site, ok := m.sites[xid]; ok {
				saved := m.base
				m.base = site.doc
				m.merge(site, x, id, k, id)
				m.base = saved
				continue
			}
		}
		list = append(list, m.copyNode(x, id, k))
	}
	for i := range dst.obj {
		if dst.obj[i].key == k {
			dst.obj[i].val = &node{kind: jArray, line: cur.line, arr: list}
		}
	}
}

// mergeSingular merges the values of a singular element-valued property.
func (m *layerMerger) mergeSingular(dst *node, k string, cur, val *node, id string, v int) {
	if cur.kind == jObject && val.kind == jObject && findSame([]*node{cur}, val) != nil {
		m.merge(&layerSite{n: cur, parent: id, doc: m.base, version: v}, val, id, k, id)
		return
	}
	if !sameLiteral(cur, val) {
		m.p.addf("inconsistentObjectValues", id, k, val, "%q differs between the definitions of %s", k, id)
	}
}

// findSame returns the element of list with the identity of x: the same
// @id, or no @id and the same name.
func findSame(list []*node, x *node) *node {
	xid := strippedID(x)
	name := x.get("name")
	for _, c := range list {
		if c.kind != jObject {
			continue
		}
		cid := strippedID(c)
		switch {
		case xid != "" || cid != "":
			if xid == cid {
				return c
			}
		case name != nil && name.kind == jString:
			if cn := c.get("name"); cn != nil && cn.kind == jString && cn.str == name.str {
				return c
			}
		}
	}
	return nil
}

func containsString(list []*node, s string) bool {
	for _, x := range list {
		if x.kind == jString && x.str == s {
			return true
		}
	}
	return false
}

// copyNode copies a value of a layer for a base element, dropping the
// layer's fragments and Layer co-types from the elements it holds; elements
// it holds that are defined elsewhere are merged there instead.
func (m *layerMerger) copyNode(n *node, parent, prop string) *node {
	switch n.kind {
	case jArray:
		c := &node{kind: jArray, line: n.line}
		for _, x := range n.arr {
			if y := m.copyNode(x, parent, prop); y != nil {
				c.arr = append(c.arr, y)
			}
		}
		return c
	case jObject:
	default:
		return n
	}
	layer := isLayer(n)
	id := strippedID(n)
	if site, ok := m.sites[id]; ok && layer {
		saved := m.base
		m.base = site.doc
		m.merge(site, n, parent, prop, parent)
		m.base = saved
		return nil
	}
	c := &node{kind: jObject, line: n.line}
	m.p.markLayered(c)
	for _, mb := range n.obj {
		val := mb.val
		switch {
		case mb.key == "@id" && layer:
			val = &node{kind: jString, str: id, line: val.line}
		case mb.key == "@type" && layer:
			t := &node{kind: jArray, line: val.line}
			for _, x := range values(val) {
				if !(x.kind == jString && x.str == "Layer") {
					t.arr = append(t.arr, x)
				}
			}
			val = t
		case strings.HasPrefix(mb.key, "@"):
		default:
			next := parent
			if id != "" {
				next = id
			}
			val = m.copyNode(val, next, mb.key)
			if val == nil {
				continue
			}
		}
		c.obj = append(c.obj, member{mb.key, val})
	}
	return c
}

// sameLiteral reports whether two JSON values are equal.
func sameLiteral(a, b *node) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case jArray:
		if len(a.arr) != len(b.arr) {
			return false
		}
		for i := range a.arr {
			if !sameLiteral(a.arr[i], b.arr[i]) {
				return false
			}
		}
		return true
	case jObject:
		if len(a.obj) != len(b.obj) {
			return false
		}
		for i := range a.obj {
			if a.obj[i].key != b.obj[i].key || !sameLiteral(a.obj[i].val, b.obj[i].val) {
				return false
			}
		}
		return true
	case jBool:
		return a.b == b.b
	default:
		return a.str == b.str
	}
}

// langStrings reads a localizable string in any of its JSON-LD forms into
// a language-to-text map.
func langStrings(n *node) map[string]string {
	out := map[string]string{}
	for _, x := range values(n) {
		switch x.kind {
		case jString:
			out["en"] = x.str
		case jObject:
			if val := x.get("@value"); val != nil {
				lang := "en"
				if l := x.get("@language"); l != nil {
					lang = l.str
				}
				out[lang] = val.str
				continue
			}
			for _, mb := range x.obj {
				out[mb.key] = mb.val.str
			}
		}
	}
	return out
}

// sameLangStrings reports whether two localizable strings agree on every
// language both give.
func sameLangStrings(a, b *node) bool {
	la, lb := langStrings(a), langStrings(b)
	for k, v := range lb {
		if w, ok := la[k]; ok && w != v {
			return false
		}
	}
	return true
}

// addContexts adds to a base element's @context the extension contexts a
// layer of it names, so that the terms the layer uses are defined.
func addContexts(dst, ctx *node) {
	cur := dst.get("@context")
	if cur == nil {
		return
	}
	list := append([]*node(nil), values(cur)...)
	for _, c := range values(ctx) {
		if c.kind != jString || strings.HasPrefix(c.str, "dtmi:dtdl:extension:layering;") || containsString(list, c.str) {
			continue
		}
		list = append(list, c)
	}
	if len(list) == len(values(cur)) {
		return
	}
	for i := range dst.obj {
		if dst.obj[i].key == "@context" {
			dst.obj[i].val = &node{kind: jArray, line: cur.line, arr: list}
		}
	}
}

// markLayered records that a value was added to the base elements by a
// layer.
func (p *parser) markLayered(n *node) {
	if p.layered == nil {
		p.layered = map[*node]bool{}
	}
	p.layered[n] = true
}
