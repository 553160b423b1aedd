package dtdl

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Document is one model text of a batch.
type Document struct {
	// Name identifies the document in diagnostics, such as a file path.
	Name string
	// Data is the JSON text: one interface, or an array of interfaces.
	Data []byte
}

// element records every identified element of a batch, for duplicate
// detection and reference resolution.
type element struct {
	id      string
	class   string
	doc     int
	line    int
	version int
	obj     any        // *Interface, *Content, *Schema, *Field or *EnumValue
	root    *Interface // the top-level interface that contains it
	part    string     // the innermost interface that contains it
	inline  bool       // an interface defined inline inside another
}

// parser holds the state of parsing one batch.
type parser struct {
	opts     Options
	docs     []Document
	doc      int
	diags    []Diagnostic
	elements map[string]*element
	order    []*element
	roots    []*Interface
	ifaces   []*Interface // every interface, inline ones included
	refs     []*schemaRefSite
	members  []*memberRefSite
	root     *Interface
	// part is the innermost interface being parsed: the partition whose
	// schemas the elements being parsed may refer to.
	part string
	// layered holds the property values a layer added to a base element.
	// The layer's own terms are checked where the layer is defined, so on
	// the merged element they are only reported as allowed by no type.
	layered map[*node]bool
}

// memberRefSite is a place that names, by DTMI, an element that the
// language otherwise expects inline: a command payload, a field, an enum
// value, a map key or value, or a relationship property defined elsewhere.
type memberRefSite struct {
	ref   string
	class string
	owner string
	prop  string
	line  int
	doc   int
	// set receives the referenced element and reports whether it has the
	// expected Go type.
	set func(obj any) bool
	// part is the partition (innermost interface) of the referring element.
	part string
}

// memberRef records a reference by DTMI to an element of the given class.
func (p *parser) memberRef(n *node, owner, prop, class string, set func(any) bool) {
	p.members = append(p.members, &memberRefSite{ref: n.str, class: class, owner: owner, prop: prop, line: n.line, doc: p.doc, set: set, part: p.part})
}

// schemaRefSite is a place that refers to a schema by DTMI.
type schemaRefSite struct {
	slot  **Schema
	ref   string
	owner string
	prop  string
	line  int
	doc   int
	// component is set when the reference must be an Interface.
	component *Content
	enumValue bool
	// part is the partition (innermost interface) of the referring element.
	part string
}

func (p *parser) add(code, elemID, prop string, n *node, msg string) {
	d := Diagnostic{Code: code, ElementID: elemID, Property: prop, Message: msg}
	if p.doc >= 0 && p.doc < len(p.docs) {
		d.File = p.docs[p.doc].Name
	}
	if n != nil {
		d.Line = n.line
	}
	p.diags = append(p.diags, d)
}

func (p *parser) addf(code, elemID, prop string, n *node, format string, args ...any) {
	p.add(code, elemID, prop, n, fmt.Sprintf(format, args...))
}

// readDocument parses the JSON text of one document of the batch and
// returns its top-level objects.
func (p *parser) readDocument(i int) []*node {
	p.doc = i
	root, err := parseJSON(p.docs[i].Data)
	if err != nil {
		p.addf("notJsonObject", "", "", nil, "parse JSON: %v", err)
		return nil
	}
	switch root.kind {
	case jObject:
		return []*node{root}
	case jArray:
		var out []*node
		for _, e := range root.arr {
			if e.kind != jObject {
				p.addf("notJsonObject", "", "", e, "a top-level array must hold only JSON objects, found %s", e.kind)
				continue
			}
			out = append(out, e)
		}
		return out
	default:
		p.addf("notJsonObject", "", "", root, "a model document must be a JSON object or array, found %s", root.kind)
		return nil
	}
}

// parseTop parses one top-level element, which must be an Interface.
func (p *parser) parseTop(n *node) {
	if g := n.get("@graph"); g != nil {
		// Without a top-level @context, the graph is reported only when it
		// is a single node bringing its own context.
		if n.get("@context") == nil {
			p.add("missingContext", "", "@context", n, "a top-level element must have @context")
			if g.kind != jObject || g.get("@context") == nil {
				return
			}
		}
		p.add("topLevelGraphDisallowed", "", "@graph", n, "@graph is not allowed in a DTDL model")
		return
	}
	ctx := n.get("@context")
	if ctx == nil {
		p.add("missingContext", idOf(n), "@context", n, "a top-level element must have @context")
		return
	}
	s, ok := p.processContext(ctx, scope{}, true, idOf(n), false)
	if !ok || s.version == 0 {
		return
	}
	t := n.get("@type")
	if t == nil || !(t.kind == jString && isInterfaceType(t.str, s.version) || t.kind == jArray && len(t.arr) > 0 && hasInterfaceType(t.arr, s.version)) {
		p.add("typeNotRootable", idOf(n), "@type", n, "a top-level element must be an Interface")
		// A type that names no DTDL class at all leaves the element
		// without a class.
		named := false
		for _, x := range values(t) {
			if x.kind != jString {
				continue
			}
			if _, isClass := classTerm(x.str, s.version); isClass {
				named = true
			} else if !strings.Contains(x.str, ":") && !abstractClasses[x.str] {
				p.addf("typeUndefinedTerm", idOf(n), "@type", x, "@type %q is not a defined term", x.str)
			}
		}
		if !named {
			p.add("badType", idOf(n), "@type", n, "the element names no DTDL class")
		}
		return
	}
	id := n.get("@id")
	if id == nil {
		p.add("missingTopLevelId", "", "@id", n, "a top-level Interface must have an @id")
		return
	}
	p.root = nil
	p.parseInterface(n, s, "", "", false)
}

func idOf(n *node) string {
	if id := n.get("@id"); id != nil && id.kind == jString {
		return id.str
	}
	return ""
}

func isInterfaceType(t string, v int) bool {
	return t == "Interface" || t == "dtmi:dtdl:class:Interface;"+strconv.Itoa(v)
}

func hasInterfaceType(ts []*node, v int) bool {
	for _, t := range ts {
		if t.kind == jString && isInterfaceType(t.str, v) {
			return true
		}
	}
	return false
}

// classProps lists the DTDL properties each class accepts, besides the
// Entity ones (displayName, description, comment).
var classProps = map[string][]string{
	"Interface":       {"contents", "extends", "schemas"},
	"Property":        {"name", "schema", "writable"},
	"Telemetry":       {"name", "schema"},
	"Command":         {"name", "request", "response", "commandType"},
	"CommandPayload":  {"name", "schema"},
	"CommandRequest":  {"name", "schema"},
	"CommandResponse": {"name", "schema"},
	"Relationship":    {"name", "maxMultiplicity", "minMultiplicity", "target", "properties", "writable"},
	"Component":       {"name", "schema"},
	"Array":           {"elementSchema"},
	"Enum":            {"valueSchema", "enumValues"},
	"EnumValue":       {"name", "enumValue"},
	"Map":             {"mapKey", "mapValue"},
	"MapKey":          {"name", "schema"},
	"MapValue":        {"name", "schema"},
	"Object":          {"fields"},
	"Field":           {"name", "schema"},
}

// dtdlTerms is every property term the DTDL core context defines.
var dtdlTerms = map[string]bool{
	"comment": true, "contents": true, "description": true, "displayName": true, "elementSchema": true,
	"enumValue": true, "enumValues": true, "extends": true, "fields": true, "mapKey": true, "mapValue": true,
	"maxMultiplicity": true, "minMultiplicity": true, "name": true, "properties": true, "request": true,
	"response": true, "schema": true, "schemas": true, "target": true, "unit": true, "valueSchema": true,
	"writable": true, "commandType": true, "symbol": true, "exponent": true, "languageMajorVersion": true,
	"baseUnit": true, "topUnit": true, "bottomUnit": true, "prefix": true, "annotates": true, "overrides": true,
}

// materialClasses is every instantiable DTDL class, by version.
var materialClasses = map[string]int{
	"Interface": 2, "Property": 2, "Telemetry": 2, "Command": 2, "Relationship": 2, "Component": 2,
	"CommandPayload": 2, "CommandRequest": 3, "CommandResponse": 3, "Array": 2, "Enum": 2, "EnumValue": 2,
	"Map": 2, "MapKey": 2, "MapValue": 2, "Object": 2, "Field": 2, "CommandType": 2,
}

// abstractClasses are DTDL classes that cannot be instantiated.
var abstractClasses = map[string]bool{
	"Entity": true, "NamedEntity": true, "Schema": true, "PrimitiveSchema": true, "ComplexSchema": true,
	"Content": true, "SchemaField": true, "NumericSchema": true, "TemporalSchema": true, "Unit": true,
	"UnitAttribute": true, "SemanticType": true, "LatentType": true, "NamedLatentType": true,
	"Boolean": true, "Date": true, "DateTime": true, "Double": true, "Duration": true, "Float": true,
	"Integer": true, "Long": true, "String": true, "Time": true,
}

// elem is the generic view of one JSON-LD node while it is parsed.
type elem struct {
	n      *node
	s      scope
	id     string
	autoID bool
	// unnamed is set on an element without @id or name in a property whose
	// members take their identifier segment from their name.
	unnamed  *memberSite
	class    string
	cotypes  []string
	props    map[string]*node
	semantic string   // the semantic type among the co-types, if any
	empty    []string // properties given as an empty list, which is no value
	refused  []string // adjunct co-types not allowed on the element's class or version
	index    int      // the index of an Indexed element, 0 if none
}

var namePattern = regexp.MustCompile(`^[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?$`)

// begin does the work common to every element: local context, @id, @type
// and the sorting of its keys into DTDL properties. allowed lists the
// classes acceptable at this position; infer is the class assumed when
// @type is absent ("" when @type is required).
func (p *parser) begin(n *node, parent scope, parentID, prop, segment string, allowed []string, infer string) (*elem, bool) {
	e := &elem{n: n, s: parent, props: map[string]*node{}}
	if n.kind != jObject {
		p.addf("refObjectNotAllowed", parentID, prop, n, "property %q must hold an object, found %s", prop, n.kind)
		return nil, false
	}
	if c := n.get("@context"); c != nil {
		s, ok := p.processContext(c, parent, false, idOf(n), v2Ranges[prop])
		if !ok {
			return nil, false
		}
		e.s = s
	}
	v := e.s.version
	// @id
	if idn := n.get("@id"); idn != nil {
		if idn.kind != jString || idn.str == "" {
			p.add("idNotString", parentID, "@id", idn, "@id must be a non-empty string")
			return nil, false
		}
		if len(n.obj) == 1 {
			// A node holding nothing but @id refers to an element rather
			// than defining one.
			p.addf("idReference", parentID, prop, idn, "%q holds an object with only @id %q; use the string instead", prop, idn.str)
			return nil, false
		}
		e.id = idn.str
		if len(e.id) > maxDTMILength && strings.HasPrefix(e.id, "dtmi:") {
			p.addf("idTooLong", parentID, "@id", idn, "@id is longer than %d characters", maxDTMILength)
			return nil, false
		}
		if !validUserDTMI(e.id, v) {
			p.addf("invalidId", parentID, "@id", idn, "@id %q is not a valid DTDL v%d DTMI", e.id, v)
			if base, frag, hasFrag := strings.Cut(e.id, "#"); hasFrag && frag != "" && e.s.has(extLayering) && validUserDTMI(base, v) {
				p.checkLayer(n, base, frag, parentID, prop)
			}
			return nil, false
		}
		if isReservedDTMI(e.id) || e.s.has(extIoTCentral) && strings.HasPrefix(e.id, "dtmi:iotcentral:") {
			p.addf("reservedId", e.id, "@id", idn, "@id %q uses a reserved prefix", e.id)
			return nil, false
		}
	} else {
		if parentID == "" {
			p.add("missingRequiredId", "", "@id", n, "element requires an @id")
			return nil, false
		}
		e.id = autoID(parentID, prop, segment)
		e.autoID = true
		if segment == "" && namedMembers[prop] {
			e.unnamed = &memberSite{parentID, prop}
		}
	}
	// @type
	tn := n.get("@type")
	var types []string
	switch {
	case tn == nil:
		if infer == "" {
			// Without a type the value is no element of the property's
			// range.
			p.addf("badType", parentID, prop, n, "element %s in %q requires @type", e.id, prop)
			return nil, false
		}
	case tn.kind == jString:
		types = []string{tn.str}
	case tn.kind == jArray && len(tn.arr) > 0:
		for _, t := range tn.arr {
			if t.kind != jString {
				p.add("badType", e.id, "@type", t, "@type entries must be strings")
				return nil, false
			}
			types = append(types, t.str)
		}
	default:
		p.add("badType", e.id, "@type", tn, "@type must be a string or a non-empty array of strings")
		return nil, false
	}
	ok := true
	cotypeFailed := false
	var abstract []string
	for _, t := range types {
		name, isClass := classTerm(t, v)
		if isClass {
			if e.class != "" && e.class != name {
				p.addf("multipleMaterialTypes", e.id, "@type", tn, "@type names both %s and %s", e.class, name)
				ok = false
				continue
			}
			if e.class == name {
				continue
			}
			e.class = name
			continue
		}
		if abstractClasses[name] {
			abstract = append(abstract, t)
			continue
		}
		if !p.cotype(e, t, tn) {
			ok, cotypeFailed = false, true
		}
	}
	if e.class == "" {
		if infer != "" && tn == nil {
			e.class = infer
		} else if len(types) > 0 {
			// No material class: the value is not an element of the
			// property's range, and a required property counts no value.
			p.addf("badType", parentID, prop, tn, "@type %v names no DTDL class allowed for %q", types, prop)
			if requiredMember[prop] {
				p.addf("objectCountBelowMin", parentID, prop, tn, "%q has no valid value", prop)
			}
			return nil, false
		}
	}
	for _, t := range abstract {
		p.addf("abstractSupplementalType", e.id, "@type", tn, "@type %q is abstract", t)
		ok = false
	}
	if !contains(allowed, e.class) {
		p.addf("badType", e.id, "@type", tn, "a %s is not allowed in %q", e.class, prop)
		if requiredMember[prop] {
			p.addf("objectCountBelowMin", parentID, prop, tn, "%q has no valid value", prop)
		}
		return nil, false
	}
	if materialClasses[e.class] > v {
		p.addf("badType", e.id, "@type", tn, "%s is not defined in DTDL v%d", e.class, v)
		return nil, false
	}
	if len(e.cotypes) > 0 && !p.checkHosts(e, tn) {
		ok = false
	}
	// undefinedProp reports a property no type of the element defines; the
	// parser adds that no @type allows it unless a co-type was itself wrong.
	undefinedProp := func(code, k string, val *node, format string) {
		if !p.layered[val] {
			p.addf(code, e.id, k, val, format, k, e.class)
		}
		if !cotypeFailed {
			p.addf("noTypeThatAllows", e.id, k, val, "no @type of %s allows property %q", e.id, k)
		}
		ok = false
	}
	// Keys.
	allowedProps := classProps[e.class]
	for _, m := range n.obj {
		k := m.key
		if strings.HasPrefix(k, "@") {
			switch k {
			case "@id", "@type", "@context":
			case "@graph":
				p.add("graphDisallowed", e.id, k, m.val, "@graph is not allowed inside a DTDL element")
				ok = false
			default:
				if v == 3 {
					code := "keywordDisallowed"
					if parentID == "" {
						code = "topLevelKeywordDisallowed"
					}
					p.addf(code, e.id, k, m.val, "keyword %q is not allowed here", k)
					ok = false
				}
			}
			continue
		}
		term, viaDTMI := k, false
		if t, isProp := propertyDTMITerm(k, v); isProp {
			term, viaDTMI = t, true
		}
		if p.isPropertyTerm(term, e.s) {
			if contains(allowedProps, term) || term == "displayName" || term == "description" || term == "comment" || p.cotypeAllowsProp(e, term) {
				if m.val.kind == jArray && len(m.val.arr) == 0 {
					e.empty = append(e.empty, term) // an empty list is no value
					continue
				}
				if _, dup := e.props[term]; dup {
					p.addf("duplicatePropertyName", e.id, term, m.val, "property %q is given both as a term and as a DTMI", term)
					ok = false
					continue
				}
				e.props[term] = m.val
				continue
			}
			if p.tolerateProperty(e, false) {
				continue
			}
			if e.refusedBrings(term) {
				// The co-type that brings the property was refused.
				p.addf("noTypeThatAllows", e.id, k, m.val, "no @type of %s allows property %q", e.id, k)
				ok = false
				continue
			}
			undefinedProp("propertyIrrelevantDtmiOrTerm", k, m.val, "property %q is not allowed on a %s")
			continue
		}
		_ = viaDTMI
		if isNonPropertyTerm(k, v) {
			if !p.tolerateProperty(e, false) {
				undefinedProp("propertyIrrelevantDtmiOrTerm", k, m.val, "%q names a DTDL type, not a property of a %s")
			}
			continue
		}
		switch {
		case strings.HasPrefix(k, "dtmi:"):
			if _, valid := ParseDTMI(k); !valid {
				if v == 3 || !p.tolerateProperty(e, true) {
					undefinedProp("propertyInvalidDtmi", k, m.val, "property %q is not a valid DTMI (on a %s)")
				}
				continue
			}
			if !p.tolerateProperty(e, false) {
				undefinedProp("propertyUndefinedTerm", k, m.val, "property %q is not defined for a %s")
			}
		case strings.Contains(k, ":"):
			if v == 3 || !p.tolerateProperty(e, true) {
				undefinedProp("propertyNotDtmiNorTerm", k, m.val, "property %q is neither a DTMI nor a term (on a %s)")
			}
		default:
			if !p.tolerateProperty(e, false) {
				undefinedProp("propertyUndefinedTerm", k, m.val, "property %q is not defined for a %s")
			}
		}
	}
	if ok && len(e.cotypes) > 0 {
		e.index, ok = p.adjunctValues(e)
	}
	return e, ok
}

// isLayer reports whether an element node is co-typed Layer.
func isLayer(n *node) bool {
	for _, t := range values(n.get("@type")) {
		if t.kind == jString && (t.str == "Layer" || strings.HasPrefix(t.str, "dtmi:dtdl:extension:layering:v1:Layer")) {
			return true
		}
	}
	return false
}

// checkLayer reports the layering problems of an element whose @id has a
// fragment. Layers are not merged: such an identifier is refused, but the
// nesting rules are still checked so that every problem is reported. A
// fragment is only allowed on a Layer; a layer may not nest under a base
// element, nor hold base elements or elements of another layer.
func (p *parser) checkLayer(n *node, base, frag, parentID, prop string) {
	if !isLayer(n) {
		p.addf("disallowedIdFragment", base, "@id", n, "@id %s#%s has a fragment but the element is not a Layer", base, frag)
		return
	}
	if parentID != "" {
		p.addf("mismatchedLayers", parentID, prop, n, "layer %s#%s is nested in a base element", base, frag)
	}
	var walk func(x *node, top string, depth int)
	walk = func(x *node, top string, depth int) {
		if depth > maxSchemaNesting {
			return
		}
		for _, m := range x.obj {
			if strings.HasPrefix(m.key, "@") {
				continue
			}
			key := top
			if key == "" {
				key = m.key
			}
			for _, c := range values(m.val) {
				if c.kind != jObject {
					continue
				}
				if id := c.get("@id"); id != nil && id.kind == jString {
					cb, cf, hasFrag := strings.Cut(id.str, "#")
					switch {
					case !hasFrag:
						p.addf("mismatchedLayers", base, key, c, "base element %s is nested in layer %s", id.str, frag)
					case !isLayer(c):
						p.addf("disallowedIdFragment", cb, "@id", c, "@id %s has a fragment but the element is not a Layer", id.str)
					case cf != frag:
						p.addf("mismatchedLayers", base, key, c, "layer %s is nested in layer %s", id.str, frag)
					}
				}
				walk(c, key, depth+1)
			}
		}
	}
	walk(n, "", 0)
}

// requiredMember lists the properties whose value is required, so that a
// value of the wrong type leaves them below their minimum count.
var requiredMember = map[string]bool{"schema": true, "elementSchema": true, "mapKey": true, "mapValue": true}

// extensionTerms maps property terms that only an extension context
// defines in DTDL v3 to that extension.
var extensionTerms = map[string]uint32{
	"unit": extQuantitative, "baseUnit": extQuantitative, "topUnit": extQuantitative, "bottomUnit": extQuantitative,
	"prefix": extQuantitative, "annotates": extAnnotation, "overrides": extOverriding,
}

// isPropertyTerm reports whether term is a property term defined in scope.
func (p *parser) isPropertyTerm(term string, s scope) bool {
	if ext, isAdjunct := adjunctPropTerms[term]; isAdjunct {
		return s.has(ext)
	}
	if !dtdlTerms[term] {
		return false
	}
	if ext, isExt := extensionTerms[term]; isExt {
		if s.version == 2 && term != "annotates" && term != "overrides" {
			return true
		}
		return s.has(ext)
	}
	return true
}

// isNonPropertyTerm reports whether k is a DTDL term or DTMI that names a
// class or a schema rather than a property.
func isNonPropertyTerm(k string, v int) bool {
	if name, isClass := classTerm(k, v); isClass || abstractClasses[name] {
		return true
	}
	_, isSchema := primitiveTerm(k, v)
	return isSchema
}

// tolerateProperty reports whether an undefined property is accepted on e:
// it needs an undefined co-type (an extension type) on the element.
func (p *parser) tolerateProperty(e *elem, malformed bool) bool {
	for _, c := range e.cotypes {
		if c[0] == '?' {
			return true
		}
	}
	return false
}

// cotypeAllowsProp reports whether a co-type brings the property term.
func (p *parser) cotypeAllowsProp(e *elem, term string) bool {
	switch term {
	case "unit":
		return e.semantic != "" || e.s.has(extIoTCentral) && (contains(e.cotypes, "AccelerationVector") || contains(e.cotypes, "VelocityVector"))
	case "annotates":
		return contains(e.cotypes, "ValueAnnotation") && !contains(e.refused, "ValueAnnotation")
	case "overrides":
		// A refused Override is reported for itself alone.
		return contains(e.cotypes, "Override")
	}
	return e.adjunctAllows(term)
}

// classTerm maps a @type value to a DTDL class name and reports whether it
// is a material class.
func classTerm(t string, v int) (string, bool) {
	name := t
	if rest, ok := strings.CutPrefix(t, "dtmi:dtdl:class:"); ok {
		base, ver, _ := strings.Cut(rest, ";")
		if ver != strconv.Itoa(v) {
			return t, false
		}
		name = base
	}
	_, ok := materialClasses[name]
	return name, ok
}

// propertyDTMITerm maps "dtmi:dtdl:property:name;3" to "name".
func propertyDTMITerm(k string, v int) (string, bool) {
	rest, ok := strings.CutPrefix(k, "dtmi:dtdl:property:")
	if !ok {
		return "", false
	}
	base, ver, _ := strings.Cut(rest, ";")
	if ver != strconv.Itoa(v) || !dtdlTerms[base] {
		return "", false
	}
	return base, true
}

// cotype records a supplemental type on e. Undefined co-types are stored
// with a '?' prefix.
func (p *parser) cotype(e *elem, t string, tn *node) bool {
	v := e.s.version
	if sem, isSem := semanticTerm(t, v); isSem && (v == 2 || e.s.has(extQuantitative)) {
		if e.semantic != "" && e.semantic != sem {
			p.addf("conflictingSupplementalTypes", e.id, "@type", tn, "semantic types %s and %s may not be combined", e.semantic, sem)
			return false
		}
		e.cotypes = append(e.cotypes, sem)
		e.semantic = sem
		return true
	}
	undefinedOK := e.s.has(extUndefined) && p.allowUndefined(v)
	if !undefinedOK && (dtdlTerms[t] || t == "synchronous" || t == "asynchronous" || t == "Interface" || t == "Unit") {
		p.addf("typeIrrelevantDtmiOrTerm", e.id, "@type", tn, "@type %q is a DTDL term that is not a type allowed here", t)
		return false
	}
	if _, isSchema := primitiveSchemaTerms[t]; isSchema && !undefinedOK {
		p.addf("typeIrrelevantDtmiOrTerm", e.id, "@type", tn, "@type %q is a schema, not a type", t)
		return false
	}
	if a := adjunctTypes[t]; a != nil && e.s.has(a.ext) || t == "Layer" && e.s.has(extLayering) {
		e.cotypes = append(e.cotypes, t)
		return true
	}
	if strings.HasPrefix(t, "dtmi:") {
		if _, ok := ParseDTMI(t); !ok {
			p.addf("typeInvalidDtmi", e.id, "@type", tn, "@type %q is not a valid DTMI", t)
			return false
		}
	}
	// An undefined extension in scope may define any term or DTMI as a
	// co-type, even one that names a DTDL term of another kind.
	if undefinedOK && (strings.HasPrefix(t, "dtmi:") || !strings.Contains(t, ":")) {
		e.cotypes = append(e.cotypes, "?"+t)
		return true
	}
	if v == 2 && !strings.HasPrefix(t, "dtmi:") {
		e.cotypes = append(e.cotypes, "?"+t)
		return true
	} else if v == 2 {
		p.addf("typeIrrelevantDtmiOrTerm", e.id, "@type", tn, "@type %q is not a DTDL type", t)
		return false
	} else if e.s.has(extUndefined) && p.allowUndefined(3) && (strings.HasPrefix(t, "dtmi:") || !strings.Contains(t, ":")) {
		e.cotypes = append(e.cotypes, "?"+t)
		return true
	}
	switch {
	case strings.HasPrefix(t, "dtmi:"):
		p.addf("typeIrrelevantDtmiOrTerm", e.id, "@type", tn, "@type %q is not a DTDL type", t)
	case strings.Contains(t, ":"):
		p.addf("typeNotDtmiNorTerm", e.id, "@type", tn, "@type %q is neither a DTMI nor a term", t)
	default:
		p.addf("typeUndefinedTerm", e.id, "@type", tn, "@type %q is not a defined term", t)
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// memberSite is the parent element and property holding a member.
type memberSite struct{ parent, prop string }

// namedMembers lists the properties whose members without @id take their
// identifier segment from their name.
var namedMembers = map[string]bool{"contents": true, "properties": true, "enumValues": true, "fields": true}

// autoID builds the identifier the parser gives an element without @id:
// the parent's DTMI with ":_prop" and, for named members, ":__name" added
// before the version.
func autoID(parent, prop, segment string) string {
	base, ver, hasVer := strings.Cut(parent, ";")
	id := base + ":_" + prop
	if segment != "" {
		id += ":__" + segment
	}
	if hasVer {
		id += ";" + ver
	}
	return id
}

// register records an identified element, reporting duplicates, and
// reports whether it was new. Generated identifiers collide only when
// sibling names do, which the name-uniqueness checks report instead.
func (p *parser) register(e *elem, class string, obj any) bool {
	if prev, dup := p.elements[e.id]; dup {
		if !e.autoID {
			p.addf("duplicateDefinition", e.id, "@id", e.n, "%s is defined more than once (also in %s)", e.id, p.docName(prev.doc))
		}
		return false
	}
	el := &element{id: e.id, class: class, doc: p.doc, line: e.n.line, version: e.s.version, obj: obj, root: p.root, part: p.part}
	p.elements[e.id] = el
	p.order = append(p.order, el)
	return true
}

func (p *parser) docName(i int) string {
	if i >= 0 && i < len(p.docs) && p.docs[i].Name != "" {
		return p.docs[i].Name
	}
	return fmt.Sprintf("document %d", i)
}

// values returns a property value as a list: arrays are spread.
func values(n *node) []*node {
	if n == nil {
		return nil
	}
	if n.kind == jArray {
		return n.arr
	}
	return []*node{n}
}

// entity reads displayName, description and comment.
func (p *parser) entity(e *elem) (dn, desc LocalizedString, comment string, ok bool) {
	ok = true
	dnMax := 512
	if e.s.version == 2 {
		dnMax = 64
	}
	if n := e.props["displayName"]; n != nil {
		if dn, ok = p.langString(e, "displayName", n, dnMax); !ok {
			return
		}
	}
	if n := e.props["description"]; n != nil {
		if desc, ok = p.langString(e, "description", n, 512); !ok {
			return
		}
	}
	if n := e.props["comment"]; n != nil {
		comment, ok = p.literalString(e, "comment", n, 512)
	}
	return
}

// langTag matches the language codes DTDL accepts: an ISO 639 language,
// then optionally an ISO 15924 script and an ISO 3166 or UN M.49 region,
// cased as BCP 47 recommends.
var langTag = regexp.MustCompile(`^[a-z]{2,3}(?:-[A-Z][a-z]{3})?(?:-(?:[A-Z]{2}|[0-9]{3}))?$`)

// isLangTaggedValue reports whether an object is a value object with a
// language, {"@value": ..., "@language": ...}, and nothing else.
func isLangTaggedValue(n *node) bool {
	if len(n.obj) != 2 {
		return false
	}
	return n.get("@value") != nil && n.get("@language") != nil
}

// langString reads a localizable string: a string, a language map, or an
// array of strings and {"@value","@language"} objects.
func (p *parser) langString(e *elem, prop string, n *node, maxLen int) (LocalizedString, bool) {
	out := LocalizedString{}
	put := func(lang, val string, at *node) bool {
		if len(val) > maxLen && runeLen(val) > maxLen {
			p.addf("langStringValueTooLong", e.id, prop, at, "%s is longer than %d characters", prop, maxLen)
			return false
		}
		if _, dup := out[lang]; dup {
			p.addf("langStringElementCodeNotUnique", e.id, prop, at, "%s has more than one value for language %q", prop, lang)
			return false
		}
		out[lang] = val
		return true
	}
	switch n.kind {
	case jString:
		return out, put("en", n.str, n)
	case jObject:
		if isLangTaggedValue(n) {
			p.addf("langTagValueInLangMap", e.id, prop, n, "%s is a language-tagged value object, but outside an array a language map is expected", prop)
			return nil, false
		}
		for _, m := range n.obj {
			if strings.HasPrefix(m.key, "@") {
				p.addf("langMapObjKeyword", e.id, prop, m.val, "%s language map may not contain keyword %q", prop, m.key)
				return nil, false
			}
			if !langTag.MatchString(m.key) {
				p.addf("langStringInvalidCode", e.id, prop, m.val, "%s has an invalid language code %q", prop, m.key)
				return nil, false
			}
			if m.val.kind != jString {
				p.addf("langStringValueNotString", e.id, prop, m.val, "%s value for %q must be a string", prop, m.key)
				return nil, false
			}
			if !put(m.key, m.val.str, m.val) {
				return nil, false
			}
		}
		return out, true
	case jArray:
		defaults := 0
		for _, el := range n.arr {
			switch el.kind {
			case jString:
				defaults++
				if defaults > 1 {
					p.addf("langStringElementCodeNotUnique", e.id, prop, el, "%s has more than one value without a language", prop)
					return nil, false
				}
				if !put("en", el.str, el) {
					return nil, false
				}
			case jObject:
				var val, lang *node
				bad := false
				for _, m := range el.obj {
					switch m.key {
					case "@value":
						val = m.val
					case "@language":
						lang = m.val
					case "@id":
						p.add("langStringElementId", e.id, prop, el, "a language string may not have @id")
						bad = true
					case "@graph":
						p.add("langStringElementGraph", e.id, prop, el, "a language string may not have @graph")
						bad = true
					case "@context":
						p.add("langStringElementContext", e.id, prop, el, "a language string may not have @context")
						bad = true
					case "@type":
						// DTDL v2 ignores the other keywords of a value object.
						if e.s.version != 2 {
							p.add("langStringElementType", e.id, prop, el, "a language string may not have @type")
							bad = true
						}
					default:
						if !strings.HasPrefix(m.key, "@") {
							p.add("langStringElementInvalidProp", e.id, prop, el, "a language string may hold only @value and @language")
							bad = true
						} else if e.s.version != 2 {
							p.add("langStringElementKeyword", e.id, prop, el, "a language string may hold only @value and @language")
							bad = true
						}
					}
				}
				if val == nil {
					p.add("langStringElementNoValue", e.id, prop, el, "a language string needs @value")
					bad = true
				} else if val.kind != jString {
					p.add("langStringElementValueNotString", e.id, prop, el, "@value of a language string must be a string")
					bad = true
				}
				if lang != nil && lang.kind != jString {
					p.add("langStringElementCodeNotString", e.id, prop, el, "@language must be a string")
					p.add("langStringElementInvalidCode", e.id, prop, el, "@language holds no valid language code")
					bad = true
				} else if lang != nil && !langTag.MatchString(lang.str) {
					p.addf("langStringElementInvalidCode", e.id, prop, el, "invalid language code %q", lang.str)
					bad = true
				}
				if bad {
					return nil, false
				}
				code := "en"
				if lang != nil {
					code = lang.str
				} else {
					defaults++
					if defaults > 1 {
						p.addf("langStringElementCodeNotUnique", e.id, prop, el, "%s has more than one value without a language", prop)
						return nil, false
					}
				}
				if !put(code, val.str, el) {
					return nil, false
				}
			default:
				p.addf("langStringElementNotStringOrObject", e.id, prop, el, "%s elements must be strings or objects", prop)
				return nil, false
			}
		}
		return out, true
	}
	p.addf("langStringNotLangString", e.id, prop, n, "%s must be a string, a language map or an array", prop)
	p.addf("langStringElementNotStringOrObject", e.id, prop, n, "%s must be a string or a language-tagged object", prop)
	return nil, false
}

func runeLen(s string) int { return len([]rune(s)) }

// xsdKinds maps the XML Schema datatypes a value object may name to the
// literal kinds DTDL uses.
var xsdKinds = map[string]string{
	"xsd:boolean": "boolean", "xsd:integer": "integer", "xsd:string": "string",
	"http://www.w3.org/2001/XMLSchema#boolean": "boolean",
	"http://www.w3.org/2001/XMLSchema#integer": "integer",
	"http://www.w3.org/2001/XMLSchema#string":  "string",
}

// literal unwraps a JSON-LD value object {"@value": x, "@type": t} for a
// property whose values are of the given kind.
func (p *parser) literal(e *elem, prop string, n *node, kind string) (*node, bool) {
	val, typ, ok := p.valueObject(e, prop, n, kind)
	if !ok {
		return nil, false
	}
	if typ != "" && typ != kind {
		p.addf(kind+"TypeNot"+upperFirst(kind), e.id, prop, n, "%s value object must have @type xsd:%s", prop, kind)
		return nil, false
	}
	if typ != "" && kindOf(val) != kind {
		p.addf(kind+"ValueNot"+upperFirst(kind), e.id, prop, n, "%s @value must be a %s", prop, kind)
		return nil, false
	}
	return val, true
}

// valueObject unwraps a literal value: a single-element array is spread,
// and a value object gives its @value and the kind its @type names. A null
// value is reported as such, together with the kind expected.
func (p *parser) valueObject(e *elem, prop string, n *node, kind string) (*node, string, bool) {
	if n.kind == jArray {
		if len(n.arr) != 1 {
			p.addf(kind+"MultipleValues", e.id, prop, n, "%s must have exactly one value", prop)
			return nil, "", false
		}
		n = n.arr[0]
	}
	if n.kind == jNull {
		p.addf("propertyValueNull", e.id, prop, n, "%s may not be null", prop)
		p.addf(kind+"Not"+upperFirst(kind), e.id, prop, n, "%s must be a %s", prop, kind)
		return nil, "", false
	}
	if n.kind != jObject {
		return n, "", true
	}
	var val, typ *node
	ok := true
	for _, m := range n.obj {
		switch m.key {
		case "@value":
			val = m.val
		case "@type":
			typ = m.val
		case "@id":
			p.add("valueObjectId", e.id, prop, n, "a value object may not have @id")
			ok = false
		case "@context":
			p.add("valueObjectContext", e.id, prop, n, "a value object may not have @context")
			ok = false
		case "@graph":
			p.add("valueObjectGraph", e.id, prop, n, "a value object may not have @graph")
			ok = false
		case "@language":
			// DTDL v2 ignores the language and other keywords of a value
			// object; v3 refuses them.
			if e.s.version != 2 {
				p.add("valueObjectLanguage", e.id, prop, n, "a value object may not have @language here")
				ok = false
			}
		default:
			if !strings.HasPrefix(m.key, "@") {
				p.addf("valueObjectInvalidProp", e.id, prop, n, "a value object may hold only @value and @type, not %q", m.key)
				ok = false
			} else if e.s.version != 2 {
				p.add("valueObjectKeyword", e.id, prop, n, "a value object may hold only @value and @type")
				ok = false
			}
		}
	}
	if val == nil {
		p.addf(kind+"ObjectNoValue", e.id, prop, n, "%s value object needs @value", prop)
		ok = false
	}
	if !ok {
		return nil, "", false
	}
	if typ == nil {
		return val, "", true
	}
	if typ.kind == jArray {
		if len(typ.arr) != 1 {
			p.addf("literalTypeNotSingular", e.id, prop, n, "%s value object must name exactly one @type", prop)
			return nil, "", false
		}
		typ = typ.arr[0]
	}
	t := "?"
	if typ.kind == jString {
		if k, known := xsdKinds[typ.str]; known {
			t = k
		}
	}
	return val, t, true
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func kindOf(n *node) string {
	switch n.kind {
	case jBool:
		return "boolean"
	case jString:
		return "string"
	case jNumber:
		if _, err := strconv.ParseInt(n.str, 10, 64); err == nil {
			return "integer"
		}
		return "number"
	}
	return n.kind.String()
}

func (p *parser) literalString(e *elem, prop string, n *node, maxLen int) (string, bool) {
	v, ok := p.literal(e, prop, n, "string")
	if !ok {
		return "", false
	}
	if v.kind != jString {
		p.addf("stringNotString", e.id, prop, n, "%s must be a string", prop)
		return "", false
	}
	if maxLen > 0 && runeLen(v.str) > maxLen {
		p.addf("stringTooLong", e.id, prop, n, "%s is longer than %d characters", prop, maxLen)
		return "", false
	}
	return v.str, true
}

func (p *parser) literalBool(e *elem, prop string, n *node) (bool, bool) {
	v, ok := p.literal(e, prop, n, "boolean")
	if !ok {
		return false, false
	}
	if v.kind != jBool {
		p.addf("booleanNotBoolean", e.id, prop, n, "%s must be a boolean", prop)
		return false, false
	}
	return v.b, true
}

func (p *parser) literalInt(e *elem, prop string, n *node) (int, bool) {
	v, ok := p.literal(e, prop, n, "integer")
	if !ok {
		return 0, false
	}
	if v.kind != jNumber {
		p.addf("integerNotInteger", e.id, prop, n, "%s must be an integer", prop)
		return 0, false
	}
	i, err := strconv.ParseInt(v.str, 10, 32)
	if err != nil {
		p.addf("integerNotInteger", e.id, prop, n, "%s must be an integer", prop)
		return 0, false
	}
	return int(i), true
}

// name reads and checks the "name" property of a named element.
func (p *parser) name(e *elem) (string, bool) {
	n := e.props["name"]
	if n == nil {
		switch {
		case contains(e.empty, "name"):
			p.addf("stringCountBelowMin", e.id, "name", e.n, "a %s requires a name, found an empty list", e.class)
		case e.unnamed != nil:
			// Without @id the name is the element's identifier segment.
			p.addf("missingDtmiSegPropertyValue", e.unnamed.parent, e.unnamed.prop, e.n, "a %s in %q without @id requires a name", e.class, e.unnamed.prop)
		default:
			p.addf("missingLiteralProperty", e.id, "name", e.n, "a %s requires a name", e.class)
		}
		return "", false
	}
	s, ok := p.literalString(e, "name", n, 0)
	if !ok {
		if n.kind == jNull {
			p.addf("missingLiteralProperty", e.id, "name", e.n, "a %s requires a name", e.class)
		}
		return "", false
	}
	maxLen := 512
	if e.s.version == 2 {
		maxLen = 64
	}
	if len(s) > maxLen {
		p.addf("stringTooLong", e.id, "name", n, "name %q is longer than %d characters", s, maxLen)
		return "", false
	}
	if !namePattern.MatchString(s) {
		p.addf("stringInvalid", e.id, "name", n, "name %q must contain only letters, digits and underscores, start with a letter and not end with an underscore", s)
		return "", false
	}
	return s, true
}

// segmentOf returns the name of a member object before it is parsed, for
// generated identifiers.
func segmentOf(n *node, v int) string {
	if n.kind != jObject {
		return ""
	}
	nn := n.get("name")
	if nn == nil {
		nn = n.get("dtmi:dtdl:property:name;" + strconv.Itoa(v))
	}
	if nn != nil && nn.kind == jArray && len(nn.arr) == 1 {
		nn = nn.arr[0]
	}
	if nn != nil && nn.kind == jObject {
		nn = nn.get("@value")
	}
	if nn != nil && nn.kind == jString {
		return nn.str
	}
	return ""
}

// semantics returns the co-types to expose and the unit.
func (p *parser) semantics(e *elem) ([]string, string, bool) {
	var types []string
	for _, c := range e.cotypes {
		types = append(types, strings.TrimPrefix(c, "?"))
	}
	un := e.props["unit"]
	if un == nil {
		if e.semantic != "" && semanticUnitType[e.semantic] != "Unitless" {
			p.addf("missingSupplementalObjectProperty", e.id, "unit", e.n, "a %s with semantic type %s requires a unit", e.class, e.semantic)
			return nil, "", false
		}
		return types, "", true
	}
	// A unit names one instance of a Unit class; it cannot be defined
	// in place.
	x := un
	if x.kind == jArray {
		if len(x.arr) != 1 {
			p.addf("objectMultipleValues", e.id, "unit", un, "unit must name exactly one unit")
			return nil, "", false
		}
		x = x.arr[0]
	}
	if x.kind == jObject {
		p.add("refObjectNotAllowed", e.id, "unit", x, "unit must name a unit, not define one")
		p.add("objectCountBelowMin", e.id, "unit", x, "unit has no valid value")
		return nil, "", false
	}
	u, ok := p.literalString(e, "unit", x, 0)
	if !ok {
		return nil, "", false
	}
	u = unitTerm(u, e.s.version)
	if e.semantic != "" {
		want := semanticUnitType[e.semantic]
		if uts, known := unitTypes[u]; !known || !contains(uts, want) {
			// The unit is not an instance of the unit type the semantic
			// type requires (its parent class).
			code := "badType"
			if e.s.version == 2 {
				code = "notRequiredType"
			}
			p.addf(code, e.id, "unit", un, "unit %q is not a %s", u, want)
			p.addf("wrongParent", e.id, "unit", un, "unit %q does not belong to the unit type %s", u, want)
			return nil, "", false
		}
	}
	return types, u, true
}

// semanticTerm maps a semantic type term or DTMI to its term.
func semanticTerm(t string, v int) (string, bool) {
	name := t
	if v == 2 {
		if rest, ok := strings.CutPrefix(t, "dtmi:standard:class:"); ok {
			name, _ = strings.CutSuffix(rest, ";2")
		}
	} else if rest, ok := strings.CutPrefix(t, "dtmi:dtdl:extension:quantitativeTypes:v1:class:"); ok {
		name = rest
	}
	_, ok := semanticUnitType[name]
	return name, ok
}

// unitTerm maps a unit DTMI to its term.
func unitTerm(u string, v int) string {
	if v == 2 {
		if rest, ok := strings.CutPrefix(u, "dtmi:standard:unit:"); ok {
			u, _ = strings.CutSuffix(rest, ";2")
		}
	} else if rest, ok := strings.CutPrefix(u, "dtmi:dtdl:extension:quantitativeTypes:v1:unit:"); ok {
		u = rest
	}
	return u
}
