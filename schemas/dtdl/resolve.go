package dtdl

import (
	"slices"
	"sort"
	"strings"
)

// Limits from the DTDL specifications.
const (
	maxExtendsDepth = 10
	maxExtendsV3    = 1024 // interfaces reachable through extends, v3
	maxContentsV3   = 100000
)

// Resolve parses a batch of documents, resolves every reference against the
// batch and the existing interfaces (which may be nil), validates the result
// and returns the interfaces the batch defines, top-level ones first in
// document order, then inline ones. On failure it returns a
// *ValidationError listing every problem; nothing is partially resolved.
func Resolve(docs []Document, existing map[string]*Interface, opts Options) ([]*Interface, error) {
	p := &parser{opts: opts, docs: docs, elements: map[string]*element{}}
	trees := make([][]*node, len(docs))
	for i := range docs {
		trees[i] = p.readDocument(i)
	}
	p.mergeLayers(trees)
	for i, ns := range trees {
		p.doc = i
		for _, n := range ns {
			p.parseTop(n)
		}
	}
	if len(p.diags) == 0 {
		p.resolve(existing)
	}
	if len(p.diags) > 0 {
		return nil, &ValidationError{Diagnostics: p.diags}
	}
	out := make([]*Interface, 0, len(p.ifaces))
	out = append(out, p.roots...)
	for _, itf := range p.ifaces {
		if !slices.Contains(p.roots, itf) {
			out = append(out, itf)
		}
	}
	return out, nil
}

// lookupElement finds an element by DTMI in the batch or the existing interfaces.
func (p *parser) lookupElement(id string, existing map[string]*Interface) (any, int) {
	if el, ok := p.elements[id]; ok {
		return el.obj, el.version
	}
	if itf, ok := existing[id]; ok {
		return itf, itf.Version
	}
	for _, itf := range existing {
		if obj, ok := itf.elements[id]; ok {
			return obj, itf.Version
		}
	}
	return nil, 0
}

func (p *parser) resolve(existing map[string]*Interface) {
	// Index the elements of each interface for later cross-batch references.
	for _, el := range p.order {
		if el.root != nil {
			el.root.elements[el.id] = el.obj
		}
	}
	// Schema references.
	for _, r := range p.refs {
		p.doc = r.doc
		obj, _ := p.lookupElement(r.ref, existing)
		if obj == nil {
			p.addf("unresolvedIdentifier", r.owner, r.prop, &node{line: r.line}, "schema %s is not defined", r.ref)
			continue
		}
		s, ok := obj.(*Schema)
		if !ok {
			p.addf("badType", r.owner, r.prop, &node{line: r.line}, "%s is not a schema", r.ref)
			if requiredMember[r.prop] {
				p.addf("propertyCountBelowMin", r.owner, r.prop, &node{line: r.line}, "%q has no valid value", r.prop)
			}
			continue
		}
		// A schema defined in an interface's schemas belongs to that
		// interface: only its own elements may refer to it.
		if el, ok := p.elements[r.ref]; ok && el.part != "" && el.part != r.part && r.component == nil {
			p.addf("crossPartitionReference", r.owner, r.prop, &node{line: r.line}, "schema %s is defined in %s and may only be used there", r.ref, el.part)
			continue
		}
		if r.enumValue && s.Kind == SchemaArray {
			p.addf("excludedType", r.owner, r.prop, &node{line: r.line}, "a DTDL v2 Property may not have an Array schema (%s)", r.ref)
			continue
		}
		*r.slot = s
	}
	// Elements named by DTMI where the language allows a reference.
	for _, r := range p.members {
		p.doc = r.doc
		obj, _ := p.lookupElement(r.ref, existing)
		if obj == nil {
			p.addf("unresolvedIdentifier", r.owner, r.prop, &node{line: r.line}, "%s %s is not defined", r.class, r.ref)
			continue
		}
		if el, ok := p.elements[r.ref]; ok && el.class != "Interface" && el.part != "" && el.part != r.part {
			p.addf("crossPartitionReference", r.owner, r.prop, &node{line: r.line}, "%s is defined in %s and may only be used there", r.ref, el.part)
			continue
		}
		if el, ok := p.elements[r.ref]; (ok && el.class != r.class && !(r.class == "Content" && contains(contentClasses, el.class))) || !r.set(obj) {
			p.addf("badType", r.owner, r.prop, &node{line: r.line}, "%s is not a %s", r.ref, r.class)
		}
	}
	if len(p.diags) > 0 {
		return
	}
	// Schema nesting: no cycles, bounded depth.
	for _, itf := range p.ifaces {
		p.doc = p.elements[itf.ID].doc
		const maxDepth = 5
		check := func(owner string, s *Schema) {
			if s == nil {
				return
			}
			if code := schemaDepth(s, 0, maxDepth, nil); code != "" {
				p.addf(code, owner, "schema", nil, "schema %s nests too deeply or refers to itself", s.ID)
			}
		}
		for _, c := range itf.Contents {
			check(c.ID, c.Schema)
			for _, rp := range c.Properties {
				check(rp.ID, rp.Schema)
			}
			if c.Request != nil {
				check(c.ID, c.Request.Schema)
			}
			if c.Response != nil {
				check(c.ID, c.Response.Schema)
			}
		}
		for _, s := range itf.Schemas {
			check(s.ID, s)
		}
	}
	if len(p.diags) > 0 {
		return
	}
	// Extends and components.
	find := func(id string) *Interface {
		if el, ok := p.elements[id]; ok {
			itf, _ := el.obj.(*Interface)
			return itf
		}
		return existing[id]
	}
	state := map[*Interface]uint8{} // 1 visiting, 2 done
	var visit func(itf *Interface, depth int) bool
	visit = func(itf *Interface, depth int) bool {
		switch state[itf] {
		case 1:
			p.addf("recursiveStructureNarrow", itf.ID, "extends", nil, "%s extends itself", itf.ID)
			return false
		case 2:
			return true
		}
		if existing[itf.ID] == itf {
			state[itf] = 2
			return true
		}
		state[itf] = 1
		if el, ok := p.elements[itf.ID]; ok {
			p.doc = el.doc
		}
		itf.Bases = itf.Bases[:0]
		ok := true
		for _, bid := range itf.Extends {
			b := find(bid)
			if b == nil {
				obj, _ := p.lookupElement(bid, existing)
				if obj != nil {
					p.addf("badType", itf.ID, "extends", nil, "%s is not an Interface", bid)
				} else {
					p.addf("unresolvedIdentifier", itf.ID, "extends", nil, "extended interface %s is not defined", bid)
				}
				ok = false
				continue
			}
			if !visit(b, depth+1) {
				ok = false
				continue
			}
			if itf.Version == 2 && b.Version == 3 {
				p.addf("disallowedVersionReference", itf.ID, "extends", nil, "a DTDL v2 interface cannot extend the DTDL v3 interface %s", bid)
				ok = false
				continue
			}
			itf.Bases = append(itf.Bases, b)
		}
		for _, c := range itf.Contents {
			if c.Kind != KindComponent {
				continue
			}
			ci := find(c.ComponentSchemaID)
			if ci == nil {
				obj, _ := p.lookupElement(c.ComponentSchemaID, existing)
				if obj != nil {
					p.addf("badType", c.ID, "schema", nil, "%s is not an Interface", c.ComponentSchemaID)
				} else {
					p.addf("unresolvedIdentifier", c.ID, "schema", nil, "component schema %s is not defined", c.ComponentSchemaID)
				}
				ok = false
				continue
			}
			if itf.Version == 2 && ci.Version == 3 {
				p.addf("disallowedVersionReference", c.ID, "schema", nil, "a DTDL v2 component cannot use the DTDL v3 interface %s", ci.ID)
				ok = false
				continue
			}
			if state[ci] == 1 || ci == itf {
				p.addf("recursiveStructureNarrow", c.ID, "schema", nil, "component %s refers back to %s", c.Name, itf.ID)
				// The interface on the cycle holds a Component, which
				// a component's schema may not.
				p.addf("excludedType", c.ID, "schema", nil, "the schema %s of component %s contains a Component", ci.ID, c.Name)
				ok = false
				continue
			}
			c.ComponentSchema = ci
		}
		if ok {
			ok = p.flatten(itf) && p.checkSiblings(itf)
		}
		state[itf] = 2
		return ok
	}
	for _, itf := range p.ifaces {
		visit(itf, 0)
	}
	if len(p.diags) > 0 {
		return
	}
	// A component's interface may not itself hold components.
	for _, itf := range p.ifaces {
		for _, c := range itf.Contents {
			if c.Kind == KindComponent && c.ComponentSchema != nil && len(c.ComponentSchema.comps) > 0 {
				p.doc = p.elements[itf.ID].doc
				p.addf("excludedType", c.ID, "schema", nil, "the schema %s of component %s contains a Component", c.ComponentSchema.ID, c.Name)
			}
		}
	}
}

// schemaDepth walks a schema graph and returns "recursiveStructureWide" on
// a cycle or "excessiveDepthWide" when a chain of elementSchema/schema links from
// the root is longer than max, else "".
func schemaDepth(s *Schema, depth, max int, path []*Schema) string {
	if s == nil {
		return ""
	}
	if depth > max {
		return "excessiveDepthWide"
	}
	if !s.Kind.IsComplex() {
		return ""
	}
	for _, q := range path {
		if q == s {
			return "recursiveStructureWide"
		}
	}
	path = append(path, s)
	var kids []*Schema
	switch s.Kind {
	case SchemaArray:
		kids = []*Schema{s.ElementSchema}
	case SchemaMap:
		kids = []*Schema{s.MapValue.Schema}
	case SchemaObject:
		for _, f := range s.Fields {
			kids = append(kids, f.Schema)
		}
	}
	for _, k := range kids {
		if code := schemaDepth(k, depth+1, max, path); code != "" {
			return code
		}
	}
	return ""
}

// flatten computes the inherited view of itf, whose bases are flattened.
func (p *parser) flatten(itf *Interface) bool {
	anc := map[string]bool{}
	depth := 0
	for _, b := range itf.Bases {
		anc[b.ID] = true
		for _, a := range b.ancestors {
			anc[a] = true
		}
		if b.depth+1 > depth {
			depth = b.depth + 1
		}
	}
	if depth > maxExtendsDepth {
		p.addf("excessiveDepthNarrow", itf.ID, "extends", nil, "extends nests %d levels; at most %d are allowed", depth, maxExtendsDepth)
		return false
	}
	if itf.Version == 3 && len(anc) > maxExtendsV3 {
		p.addf("excessiveCount", itf.ID, "extends", nil, "more than %d interfaces are reachable through extends", maxExtendsV3)
		return false
	}
	itf.depth = depth
	itf.ancestors = itf.ancestors[:0]
	for a := range anc {
		itf.ancestors = append(itf.ancestors, a)
	}
	sort.Strings(itf.ancestors)
	itf.byName = map[string]*Content{}
	itf.rels = map[string]*Content{}
	itf.comps = map[string]*Content{}
	itf.all = itf.all[:0]
	ok := true
	addContent := func(c *Content) {
		if prev, dup := itf.byName[c.Name]; dup {
			if prev == c {
				return // diamond inheritance of the same declaration
			}
			p.addf("nonUniqueImportedPropertyValue", itf.ID, "contents", nil, "content name %q is declared by both %s and %s", c.Name, prev.DefinedIn, c.DefinedIn)
			ok = false
			return
		}
		itf.byName[c.Name] = c
		itf.all = append(itf.all, c)
		switch c.Kind {
		case KindRelationship:
			itf.rels[c.Name] = c
		case KindComponent:
			itf.comps[c.Name] = c
		}
	}
	for _, c := range itf.Contents {
		addContent(c)
	}
	for _, b := range itf.Bases {
		for _, c := range b.all {
			addContent(c)
		}
	}
	if itf.Version == 2 && len(itf.Contents) > 300 {
		p.addf("objectCountAboveMax", itf.ID, "contents", nil, "an Interface may have at most 300 contents in DTDL v2")
		ok = false
	}
	if itf.Version == 3 && len(itf.all) > maxContentsV3 {
		p.addf("excessiveCount", itf.ID, "contents", nil, "more than %d contents", maxContentsV3)
		ok = false
	}
	return ok
}

// checkSiblings checks the ValueAnnotation and Override properties among
// the flattened contents of itf: each annotates a sibling Property or
// Telemetry that is not itself an annotation; each Override overrides a
// supplemental property (unit) of that sibling, with a schema of the
// matching unit type, and no two override the same property of the same
// content.
func (p *parser) checkSiblings(itf *Interface) bool {
	ok := true
	var seen map[[2]string]string
	for _, c := range itf.all {
		if c.annotates == "" {
			continue
		}
		target := itf.byName[c.annotates]
		if target == nil {
			continue
		}
		switch {
		case target.Kind != KindProperty && target.Kind != KindTelemetry:
			p.addf("notSiblingRequiredType", c.ID, "annotates", nil, "%s annotates %s, which is neither a Property nor a Telemetry", c.Name, c.annotates)
			ok = false
			continue
		case target.annotates != "":
			p.addf("disallowedType", c.ID, "annotates", nil, "%s annotates %s, which is itself a ValueAnnotation", c.Name, c.annotates)
			ok = false
			continue
		case c.overrides == "":
			continue
		}
		if seen == nil {
			seen = map[[2]string]string{}
		}
		key := [2]string{c.annotates, c.overrides}
		if prev, dup := seen[key]; dup {
			p.addf("multipleReference", itf.ID, "contents", nil, "%s and %s both override %s of %s", prev, c.Name, c.overrides, c.annotates)
			ok = false
			continue
		}
		seen[key] = c.Name
		if c.overrides != "unit" {
			if dtdlTerms[c.overrides] {
				p.addf("matchingPropertyNotSupplemental", c.ID, "overrides", nil, "%s may only override a supplemental property, not %s", c.Name, c.overrides)
				ok = false
			}
			continue
		}
		if target.Unit == "" {
			p.addf("noMatchingSupplementalProperty", c.ID, "overrides", nil, "%s has no unit for %s to override", c.annotates, c.Name)
			ok = false
			continue
		}
		if c.Schema == nil || c.Schema.Kind != SchemaEnum {
			continue
		}
		unitType := strings.TrimPrefix(c.Schema.ID, "dtmi:standard:schema:")
		if unitEnums[unitType] == c.Schema && !slices.Contains(unitTypes[target.Unit], unitType) {
			p.addf("siblingPropertyMismatch", c.ID, "schema", nil, "%s overrides unit %s of %s with a %s", c.Name, target.Unit, c.annotates, unitType)
			ok = false
		}
	}
	return ok
}
