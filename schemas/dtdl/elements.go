package dtdl

import (
	"strconv"
	"strings"
)

// parseInterface parses an Interface, top-level or inline (in extends or a
// Component schema).
func (p *parser) parseInterface(n *node, s scope, parentID, prop string, inline bool) *Interface {
	e, ok := p.begin(n, s, parentID, prop, "", []string{"Interface"}, "")
	if !ok {
		return nil
	}
	if e.autoID {
		p.addf("missingRequiredId", parentID, prop, n, "an Interface requires an @id")
		return nil
	}
	v := e.s.version
	if len(e.id) > 128 && !strings.Contains(e.id, "#") {
		p.addf("idTooLongForType", e.id, "@id", n, "an Interface @id may be at most 128 characters")
		return nil
	}
	itf := &Interface{ID: e.id, Version: v, Types: nil, elements: map[string]any{}}
	if p.doc < len(p.docs) {
		itf.File = p.docs[p.doc].Name
	}
	outer, outerPart := p.root, p.part
	if p.root == nil {
		p.root = itf
	}
	p.part = e.id
	defer func() { p.root, p.part = outer, outerPart }()
	for _, c := range e.cotypes {
		itf.Types = append(itf.Types, strings.TrimPrefix(c, "?"))
	}
	p.register(e, "Interface", itf)
	if el := p.elements[e.id]; el != nil && el.obj == any(itf) {
		el.inline = inline
	}
	var good bool
	itf.DisplayName, itf.Description, itf.Comment, good = p.entity(e)
	ok = ok && good
	if ext := e.props["extends"]; ext != nil {
		vals := values(ext)
		if v == 2 && len(vals) > 2 {
			p.addf("objectCountAboveMax", e.id, "extends", ext, "extends may name at most 2 interfaces in DTDL v2")
			ok = false
		}
		for _, x := range vals {
			switch x.kind {
			case jString:
				if !validUserDTMI(x.str, v) {
					p.addf("invalidId", e.id, "extends", x, "extends value %q is not a valid DTMI", x.str)
					ok = false
					continue
				}
				itf.Extends = append(itf.Extends, x.str)
			case jObject:
				in := p.parseInterface(x, e.s, e.id, "extends", true)
				if in == nil {
					ok = false
					continue
				}
				itf.Extends = append(itf.Extends, in.ID)
			default:
				p.addf("refNotStringOrObject", e.id, "extends", x, "extends values must be DTMIs or Interfaces")
				ok = false
			}
		}
	}
	if sc := e.props["schemas"]; sc != nil {
		for _, x := range values(sc) {
			if x.kind != jObject {
				p.addf("refObjectNotAllowed", e.id, "schemas", x, "schemas must hold complex schema definitions")
				ok = false
				continue
			}
			if x.get("@id") == nil {
				p.addf("missingRequiredId", e.id, "schemas", x, "a schema in schemas requires an @id")
				ok = false
				continue
			}
			sch := p.parseComplexSchema(x, e.s, e.id, "schemas", "", 0)
			if sch == nil {
				ok = false
				continue
			}
			itf.Schemas = append(itf.Schemas, sch)
		}
	}
	if cn := e.props["contents"]; cn != nil {
		vals := values(cn)
		if v == 2 && len(vals) > 300 {
			p.addf("objectCountAboveMax", e.id, "contents", cn, "an Interface may have at most 300 contents in DTDL v2")
			ok = false
		}
		names := map[string]bool{}
		var indexes map[int]bool
		for _, x := range vals {
			if x.kind == jString {
				// A content defined elsewhere, named by its DTMI.
				switch {
				case isReservedDTMI(x.str) || strings.HasPrefix(x.str, "dtmi:iotcentral:"):
					p.addf("undefinedReservedId", e.id, "contents", x, "%s is a reserved identifier that names no content", x.str)
					ok = false
				case !validUserDTMI(x.str, v):
					p.addf("invalidId", e.id, "contents", x, "contents value %q is not a valid DTMI", x.str)
					ok = false
				default:
					p.memberRef(x, e.id, "contents", "Content", func(obj any) bool {
						c, isContent := obj.(*Content)
						if isContent {
							itf.Contents = append(itf.Contents, c)
						}
						return isContent
					})
				}
				continue
			}
			c := p.parseContent(x, e.s, e.id)
			if c == nil {
				ok = false
				continue
			}
			if names[c.Name] {
				p.addf("nonUniquePropertyValue", e.id, "contents", x, "name %q is used by more than one content", c.Name)
				ok = false
				continue
			}
			names[c.Name] = true
			if !p.uniqueIndex(&indexes, c.index, e.id, "contents", x) {
				ok = false
				continue
			}
			c.DefinedIn = itf.ID
			itf.Contents = append(itf.Contents, c)
		}
	}
	if !ok {
		return nil
	}
	p.ifaces = append(p.ifaces, itf)
	if !inline && outer == nil {
		p.roots = append(p.roots, itf)
	}
	return itf
}

var contentClasses = []string{"Property", "Telemetry", "Command", "Relationship", "Component"}

func (p *parser) parseContent(n *node, s scope, parentID string) *Content {
	if n.kind != jObject {
		p.addf("refObjectNotAllowed", parentID, "contents", n, "contents must hold objects")
		return nil
	}
	e, ok := p.begin(n, s, parentID, "contents", segmentOf(n, s.version), contentClasses, "")
	if !ok {
		return nil
	}
	c := &Content{ID: e.id, index: e.index}
	switch e.class {
	case "Property":
		c.Kind = KindProperty
	case "Telemetry":
		c.Kind = KindTelemetry
	case "Command":
		c.Kind = KindCommand
	case "Relationship":
		c.Kind = KindRelationship
	case "Component":
		c.Kind = KindComponent
	}
	if !p.register(e, e.class, c) && !e.autoID {
		return nil // a second definition of the same element
	}
	if c.Name, ok = p.name(e); !ok {
		return nil
	}
	var good bool
	if c.DisplayName, c.Description, c.Comment, good = p.entity(e); !good {
		return nil
	}
	if c.Types, c.Unit, good = p.semantics(e); !good {
		return nil
	}
	if e.semantic != "" && c.Kind != KindProperty && c.Kind != KindTelemetry && !(c.Kind == KindRelationship && e.s.version == 2) {
		p.invalidSemantic(e, "semantic type %s is not allowed on a %s", e.semantic, e.class)
		return nil
	}
	if a := e.props["annotates"]; a != nil && a.kind == jString {
		c.annotates = a.str
	}
	if o := e.props["overrides"]; o != nil && o.kind == jString {
		c.overrides = o.str
	}
	switch c.Kind {
	case KindProperty, KindTelemetry:
		c.Schema = p.schemaProp(e, "schema", c.Kind == KindProperty && e.s.version == 2, &c.Schema)
		if c.Schema == nil || !p.numericForSemantic(e, c.Schema) || !p.adjunctSchema(e, c.Schema) {
			return nil
		}
		if c.Kind == KindProperty {
			if w := e.props["writable"]; w != nil {
				if c.Writable, ok = p.literalBool(e, "writable", w); !ok {
					return nil
				}
			}
		}
	case KindCommand:
		for _, pr := range []string{"request", "response"} {
			x := e.props[pr]
			if x == nil {
				continue
			}
			class := "CommandPayload"
			if e.s.version == 3 {
				class = "CommandRequest"
				if pr == "response" {
					class = "CommandResponse"
				}
			}
			if x.kind == jArray {
				if len(x.arr) != 1 {
					p.addf("objectMultipleValues", e.id, pr, x, "%s must hold one payload", pr)
					return nil
				}
				x = x.arr[0]
			}
			f := p.parseField(x, e.s, e.id, pr, "", class, 0)
			if f == nil {
				return nil
			}
			if pr == "request" {
				c.Request = f
			} else {
				c.Response = f
			}
		}
		if ct := e.props["commandType"]; ct != nil {
			if v := values(ct); len(v) == 1 && v[0].kind == jObject && (v[0].get("@id") != nil || v[0].get("@type") != nil) {
				// The command types are fixed instances; none may be defined.
				p.add("badType", e.id, "commandType", ct, "commandType must name synchronous or asynchronous, not define a CommandType")
				return nil
			}
			str, ok := p.literalString(e, "commandType", ct, 0)
			if !ok {
				return nil
			}
			str = strings.TrimPrefix(str, "dtmi:dtdl:instance:CommandType:")
			str, _, _ = strings.Cut(str, ";")
			if str != "synchronous" && str != "asynchronous" {
				p.addf("notRequiredValue", e.id, "commandType", ct, "commandType must be synchronous or asynchronous")
				return nil
			}
			c.CommandType = str
		}
	case KindRelationship:
		if t := e.props["target"]; t != nil {
			// The target is an identifier, not a literal: it names an
			// Interface by its DTMI.
			x := t
			if x.kind == jArray && len(x.arr) == 1 {
				x = x.arr[0]
			}
			switch {
			case x.kind != jString:
				p.add("identifierNotString", e.id, "target", t, "target must be a DTMI string")
				return nil
			case !strings.HasPrefix(x.str, "dtmi:"):
				p.addf("identifierNotDtmi", e.id, "target", t, "target %q is not a DTMI", x.str)
				return nil
			case !validUserDTMI(x.str, e.s.version):
				p.addf("invalidId", e.id, "target", t, "target %q is not a valid DTMI", x.str)
				return nil
			}
			c.Target = x.str
		}
		if m := e.props["minMultiplicity"]; m != nil {
			i, ok := p.literalInt(e, "minMultiplicity", m)
			if !ok {
				return nil
			}
			if i != 0 {
				p.addf("valueNotExact", e.id, "minMultiplicity", m, "minMultiplicity must be 0")
				return nil
			}
		}
		if m := e.props["maxMultiplicity"]; m != nil {
			i, ok := p.literalInt(e, "maxMultiplicity", m)
			if !ok {
				return nil
			}
			if i < 0 {
				// Below the range of the datatype (a non-negative integer)
				// and below the minimum.
				p.addf("valueBelowRange", e.id, "maxMultiplicity", m, "maxMultiplicity must not be negative")
			}
			if i < 1 {
				p.addf("valueBelowMin", e.id, "maxMultiplicity", m, "maxMultiplicity must be at least 1")
				return nil
			}
			if e.s.version == 2 && i > 500 {
				p.addf("valueAboveRange", e.id, "maxMultiplicity", m, "maxMultiplicity may be at most 500 in DTDL v2")
				return nil
			}
			c.MaxMultiplicity = i
		}
		if w := e.props["writable"]; w != nil {
			if c.Writable, ok = p.literalBool(e, "writable", w); !ok {
				return nil
			}
		}
		if ps := e.props["properties"]; ps != nil {
			names := map[string]bool{}
			for _, x := range values(ps) {
				if x.kind == jString && validUserDTMI(x.str, e.s.version) {
					pc := &Content{}
					p.memberRef(x, e.id, "properties", "Property", func(obj any) bool {
						y, ok := obj.(*Content)
						if ok {
							*pc = *y
						}
						return ok
					})
					c.Properties = append(c.Properties, pc)
					continue
				}
				if x.kind != jObject {
					p.addf("refObjectNotAllowed", e.id, "properties", x, "properties must hold Property objects")
					return nil
				}
				pe, ok := p.begin(x, e.s, e.id, "properties", segmentOf(x, e.s.version), []string{"Property"}, "")
				if !ok {
					return nil
				}
				pc := &Content{ID: pe.id, Kind: KindProperty}
				p.register(pe, "Property", pc)
				if pc.Name, ok = p.name(pe); !ok {
					return nil
				}
				var good bool
				if pc.DisplayName, pc.Description, pc.Comment, good = p.entity(pe); !good {
					return nil
				}
				if pc.Types, pc.Unit, good = p.semantics(pe); !good {
					return nil
				}
				if pc.Schema = p.schemaProp(pe, "schema", pe.s.version == 2, &pc.Schema); pc.Schema == nil {
					return nil
				}
				if w := pe.props["writable"]; w != nil {
					if pc.Writable, ok = p.literalBool(pe, "writable", w); !ok {
						return nil
					}
				}
				if names[pc.Name] {
					p.addf("nonUniquePropertyValue", e.id, "properties", x, "relationship property name %q is not unique", pc.Name)
					return nil
				}
				names[pc.Name] = true
				c.Properties = append(c.Properties, pc)
			}
		}
	case KindComponent:
		x := e.props["schema"]
		if x == nil {
			p.addf("missingObjectProperty", e.id, "schema", n, "a Component requires a schema")
			return nil
		}
		if x.kind == jArray {
			if len(x.arr) != 1 {
				p.add("objectMultipleValues", e.id, "schema", x, "a Component schema must name exactly one Interface")
				return nil
			}
			x = x.arr[0]
		}
		switch x.kind {
		case jString:
			if !validUserDTMI(x.str, e.s.version) {
				p.addf("invalidId", e.id, "schema", x, "component schema %q is not a valid DTMI", x.str)
				return nil
			}
			c.ComponentSchemaID = x.str
		case jObject:
			in := p.parseInterface(x, e.s, e.id, "schema", true)
			if in == nil {
				return nil
			}
			c.ComponentSchemaID = in.ID
		default:
			p.addf("refNotStringOrObject", e.id, "schema", x, "component schema must be a DTMI or an Interface")
			return nil
		}
	}
	return c
}

// schemaProp reads a schema-valued property: a primitive term, a DTMI
// reference or an inline complex schema. noArray forbids Arrays (DTDL v2
// Property schemas). slot is where a DTMI reference is later resolved.
func (p *parser) schemaProp(e *elem, prop string, noArray bool, slot **Schema) *Schema {
	x := e.props[prop]
	if x == nil {
		if contains(e.empty, prop) {
			p.addf("objectCountBelowMin", e.id, prop, e.n, "a %s requires %s, found an empty list", e.class, prop)
		} else {
			p.addf("missingObjectProperty", e.id, prop, e.n, "a %s requires %s", e.class, prop)
		}
		return nil
	}
	return p.schemaValue(e.id, e.s, prop, x, noArray, slot, 0)
}

// maxSchemaNesting bounds inline schema recursion on hostile input.
const maxSchemaNesting = 64

func (p *parser) schemaValue(ownerID string, s scope, prop string, x *node, noArray bool, slot **Schema, depth int) *Schema {
	if x.kind == jArray {
		if len(x.arr) != 1 {
			p.addf("objectMultipleValues", ownerID, prop, x, "%s must hold exactly one schema", prop)
			return nil
		}
		x = x.arr[0]
	}
	switch x.kind {
	case jString:
		if k, ok := primitiveTerm(x.str, s.version); ok {
			return primitiveSchemas[s.version][k]
		}
		if sch := iotCentralSchemas[x.str]; sch != nil && s.has(extIoTCentral) {
			return sch
		}
		if sch := unitEnums[x.str]; sch != nil && (s.version == 2 || s.has(extQuantitative)) {
			return sch
		}
		if _, isClass := classTerm(x.str, s.version); isClass || abstractClasses[x.str] {
			p.addf("badType", ownerID, prop, x, "%q names a class, not a schema", x.str)
			return nil
		}
		if !strings.HasPrefix(x.str, "dtmi:") {
			p.addf("badDtmiOrTerm", ownerID, prop, x, "schema %q is neither a schema term nor a DTMI", x.str)
			return nil
		}
		if !validUserDTMI(x.str, s.version) {
			p.addf("invalidId", ownerID, prop, x, "schema %q is not a valid DTMI", x.str)
			return nil
		}
		ref := &Schema{Kind: schemaRef, ref: x.str, line: x.line, doc: p.doc}
		p.refs = append(p.refs, &schemaRefSite{slot: slot, ref: x.str, owner: ownerID, prop: prop, line: x.line, doc: p.doc, part: p.part})
		if noArray {
			p.refs[len(p.refs)-1].enumValue = true // reuse: marks "no Array" check
		}
		return ref
	case jObject:
		if depth > maxSchemaNesting {
			p.addf("excessiveDepthWide", ownerID, prop, x, "schemas nest deeper than %d", maxSchemaNesting)
			return nil
		}
		sch := p.parseComplexSchema(x, s, ownerID, prop, "", depth+1)
		if sch == nil {
			return nil
		}
		if noArray && sch.Kind == SchemaArray {
			p.addf("excludedType", ownerID, prop, x, "a DTDL v2 Property may not have an Array schema")
			return nil
		}
		return sch
	}
	p.addf("refNotStringOrObject", ownerID, prop, x, "%s must be a schema term, a DTMI or a schema object", prop)
	if requiredMember[prop] {
		p.addf("objectCountBelowMin", ownerID, prop, x, "%q has no valid value", prop)
	}
	return nil
}

// primitiveTerm maps a schema term or standard schema DTMI to its kind.
func primitiveTerm(t string, v int) (SchemaKind, bool) {
	name := t
	if rest, ok := strings.CutPrefix(t, "dtmi:dtdl:instance:Schema:"); ok {
		base, ver, _ := strings.Cut(rest, ";")
		if ver != "2" && ver != strconv.Itoa(v) {
			return 0, false
		}
		name = base
	} else if rest, ok := strings.CutPrefix(t, "dtmi:standard:schema:geospatial:"); ok {
		base, ver, _ := strings.Cut(rest, ";")
		if ver != "2" && ver != strconv.Itoa(v) {
			return 0, false
		}
		name = base
	}
	p, ok := primitiveSchemaTerms[name]
	if !ok || p.version > v {
		return 0, false
	}
	return p.kind, true
}

var complexClasses = []string{"Array", "Enum", "Map", "Object"}

func (p *parser) parseComplexSchema(n *node, s scope, parentID, prop, segment string, depth int) *Schema {
	e, ok := p.begin(n, s, parentID, prop, segment, complexClasses, "")
	if !ok {
		return nil
	}
	sch := &Schema{ID: e.id, line: n.line, doc: p.doc}
	for _, c := range e.cotypes {
		sch.Types = append(sch.Types, strings.TrimPrefix(c, "?"))
	}
	if e.semantic != "" {
		p.invalidSemantic(e, "semantic type %s is not allowed on a %s", e.semantic, e.class)
		return nil
	}
	p.register(e, e.class, sch)
	var good bool
	if sch.DisplayName, sch.Description, sch.Comment, good = p.entity(e); !good {
		return nil
	}
	v := e.s.version
	switch e.class {
	case "Array":
		sch.Kind = SchemaArray
		x := e.props["elementSchema"]
		if x == nil {
			p.addf("missingObjectProperty", e.id, "elementSchema", n, "an Array requires elementSchema")
			return nil
		}
		if sch.ElementSchema = p.schemaValue(e.id, e.s, "elementSchema", x, false, &sch.ElementSchema, depth); sch.ElementSchema == nil {
			return nil
		}
	case "Map":
		sch.Kind = SchemaMap
		for _, pr := range []string{"mapKey", "mapValue"} {
			x := e.props[pr]
			if x == nil {
				p.addf("missingObjectProperty", e.id, pr, n, "a Map requires %s", pr)
				return nil
			}
			if x.kind == jArray {
				if len(x.arr) != 1 {
					p.addf("objectMultipleValues", e.id, pr, x, "%s must hold one object", pr)
					return nil
				}
				x = x.arr[0]
			}
			class := "MapKey"
			if pr == "mapValue" {
				class = "MapValue"
			}
			f := p.parseField(x, e.s, e.id, pr, "", class, depth)
			if f == nil {
				return nil
			}
			if pr == "mapKey" {
				if f.ID != "" && f.Schema.Kind != SchemaString {
					p.badMapKeySchema(f.ID, x)
					return nil
				}
				sch.MapKey = f
			} else {
				sch.MapValue = f
			}
		}
	case "Object":
		sch.Kind = SchemaObject
		fs := values(e.props["fields"])
		if v == 2 && len(fs) == 0 {
			p.countBelowMin(e, "fields", "an Object requires at least one field in DTDL v2")
			return nil
		}
		if v == 2 && len(fs) > 30 {
			p.addf("objectCountAboveMax", e.id, "fields", n, "an Object may have at most 30 fields in DTDL v2")
			return nil
		}
		names := map[string]bool{}
		var indexes map[int]bool
		for _, x := range fs {
			f := p.parseField(x, e.s, e.id, "fields", segmentOf(x, v), "Field", depth)
			if f == nil {
				return nil
			}
			if f.Name != "" && names[f.Name] {
				p.addf("nonUniquePropertyValue", e.id, "fields", x, "field name %q is not unique", f.Name)
				return nil
			}
			names[f.Name] = true
			if !p.uniqueIndex(&indexes, f.index, e.id, "fields", x) {
				return nil
			}
			sch.Fields = append(sch.Fields, f)
		}
	case "Enum":
		sch.Kind = SchemaEnum
		vs := e.props["valueSchema"]
		if vs == nil {
			p.addf("missingObjectProperty", e.id, "valueSchema", n, "an Enum requires valueSchema")
			return nil
		}
		if vs.kind == jArray && len(vs.arr) == 1 {
			vs = vs.arr[0]
		}
		k, isPrim := SchemaKind(0), false
		if vs.kind == jString {
			k, isPrim = primitiveTerm(vs.str, v)
		}
		if isPrim && k != SchemaInteger && k != SchemaString {
			p.addf("incorrectPropertyValue", e.id, "valueSchema", vs, "an Enum valueSchema must be integer or string, not %s", vs.str)
			return nil
		}
		if !isPrim {
			p.addf("notRequiredValue", e.id, "valueSchema", vs, "an Enum valueSchema must be integer or string")
			return nil
		}
		sch.ValueSchema = k
		evs := values(e.props["enumValues"])
		if v == 2 && len(evs) == 0 {
			p.countBelowMin(e, "enumValues", "an Enum requires at least one value in DTDL v2")
			return nil
		}
		if v == 2 && len(evs) > 100 {
			p.addf("objectCountAboveMax", e.id, "enumValues", n, "an Enum may have at most 100 values in DTDL v2")
			return nil
		}
		names := map[string]bool{}
		vals := map[string]bool{}
		var indexes map[int]bool
		for _, x := range evs {
			ev := p.parseEnumValue(x, e.s, e.id, k)
			if ev == nil {
				return nil
			}
			if ev.Name == "" {
				sch.EnumValues = append(sch.EnumValues, ev)
				continue // a reference, checked where it is defined
			}
			if names[ev.Name] {
				p.addf("nonUniquePropertyValue", e.id, "enumValues", x, "enum value name %q is not unique", ev.Name)
				return nil
			}
			names[ev.Name] = true
			key := strconv.Quote(toString(ev.Value))
			if vals[key] {
				p.addf("nonUniquePropertyValue", e.id, "enumValues", x, "enum value %v is not unique", ev.Value)
				return nil
			}
			vals[key] = true
			if !p.uniqueIndex(&indexes, ev.index, e.id, "enumValues", x) {
				return nil
			}
			sch.EnumValues = append(sch.EnumValues, ev)
		}
	}
	return sch
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return "s" + x
	case int:
		return "i" + strconv.Itoa(x)
	}
	return ""
}

func (p *parser) parseEnumValue(n *node, s scope, parentID string, k SchemaKind) *EnumValue {
	if n.kind == jString && validUserDTMI(n.str, s.version) {
		ev := &EnumValue{}
		p.memberRef(n, parentID, "enumValues", "EnumValue", func(obj any) bool {
			x, ok := obj.(*EnumValue)
			if ok {
				*ev = *x
			}
			return ok
		})
		return ev
	}
	if n.kind != jObject {
		p.addf("refObjectNotAllowed", parentID, "enumValues", n, "enumValues must hold objects")
		return nil
	}
	e, ok := p.begin(n, s, parentID, "enumValues", segmentOf(n, s.version), []string{"EnumValue"}, "EnumValue")
	if !ok {
		return nil
	}
	ev := &EnumValue{ID: e.id, index: e.index}
	p.register(e, "EnumValue", ev)
	if ev.Name, ok = p.name(e); !ok {
		return nil
	}
	var good bool
	if ev.DisplayName, ev.Description, ev.Comment, good = p.entity(e); !good {
		return nil
	}
	x := e.props["enumValue"]
	if x == nil {
		p.addf("missingLiteralProperty", e.id, "enumValue", n, "an EnumValue requires enumValue")
		return nil
	}
	want := "string"
	if k == SchemaInteger {
		want = "integer"
	}
	val, typ, ok := p.valueObject(e, "enumValue", x, want)
	if !ok {
		return nil
	}
	// An enum value is an integer or a string; a value object may say
	// which, and its value must then be of that datatype.
	got := kindOf(val)
	if typ != "" && typ != got {
		if typ != "?" {
			p.addf(typ+"ValueNot"+upperFirst(typ), e.id, "enumValue", x, "enumValue @value must be a %s", typ)
		}
		p.addf("literalNotValid", e.id, "enumValue", x, "enumValue is not a valid literal")
		return nil
	}
	switch {
	case got != "integer" && got != "string":
		p.addf("literalNotValid", e.id, "enumValue", x, "enumValue must be an integer or a string")
		return nil
	case got != want:
		p.addf("nonConformantDatatype", e.id, "enumValue", x, "enumValue must be a %s, the Enum's valueSchema", want)
		return nil
	case got == "integer":
		i, err := strconv.ParseInt(val.str, 10, 32)
		if err != nil {
			p.addf("integerNotInteger", e.id, "enumValue", x, "enumValue must be a 32-bit integer")
			return nil
		}
		ev.Value = int(i)
	default:
		ev.Value = val.str
	}
	return ev
}

// parseField parses an Object field, a Map key or value, or a Command payload.
func (p *parser) parseField(n *node, s scope, parentID, prop, segment, class string, depth int) *Field {
	if n.kind == jString && validUserDTMI(n.str, s.version) {
		f := &Field{}
		p.memberRef(n, parentID, prop, class, func(obj any) bool {
			x, ok := obj.(*Field)
			if ok {
				*f = *x
			}
			return ok
		})
		return f
	}
	if n.kind != jObject {
		p.addf("refObjectNotAllowed", parentID, prop, n, "%s must hold an object", prop)
		return nil
	}
	e, ok := p.begin(n, s, parentID, prop, segment, []string{class}, class)
	if !ok {
		return nil
	}
	f := &Field{ID: e.id, index: e.index}
	p.register(e, class, f)
	if f.Name, ok = p.name(e); !ok {
		return nil
	}
	var good bool
	if f.DisplayName, f.Description, f.Comment, good = p.entity(e); !good {
		return nil
	}
	if f.Types, f.Unit, good = p.semantics(e); !good {
		return nil
	}
	if e.semantic != "" && e.s.version == 2 {
		p.invalidSemantic(e, "semantic types are not allowed on a %s in DTDL v2", class)
		return nil
	}
	x := e.props["schema"]
	if x == nil {
		p.addf("missingObjectProperty", e.id, "schema", n, "a %s requires a schema", class)
		return nil
	}
	if class == "MapKey" {
		if x.kind == jArray && len(x.arr) == 1 {
			x = x.arr[0]
		}
		if x.kind != jString {
			p.badMapKeySchema(e.id, x)
			return nil
		}
		if k, ok := primitiveTerm(x.str, e.s.version); !ok || k != SchemaString {
			p.badMapKeySchema(e.id, x)
			return nil
		}
		f.Schema = primitiveSchemas[e.s.version][SchemaString]
		return f
	}
	if f.Schema = p.schemaValue(e.id, e.s, "schema", x, false, &f.Schema, depth); f.Schema == nil || !p.numericForSemantic(e, f.Schema) || !p.adjunctSchema(e, f.Schema) {
		return nil
	}
	return f
}

// iotCentralSchemas are the schemas of the IoT Central partner context
// (dtmi:iotcentral:context;2): a 3-D vector and a geographic point.
var iotCentralSchemas = map[string]*Schema{
	"vector":   iotCentralObject("dtmi:iotcentral:schema:vector;2", "x", "y", "z"),
	"geopoint": iotCentralObject("dtmi:iotcentral:schema:geopoint;2", "lat", "lon", "alt"),
}

func iotCentralObject(id string, fields ...string) *Schema {
	s := &Schema{ID: id, Kind: SchemaObject}
	for _, f := range fields {
		s.Fields = append(s.Fields, &Field{ID: id[:len(id)-2] + ":" + f + ";2", Name: f, Schema: primitiveSchemas[2][SchemaDouble]})
	}
	return s
}

// numericForSemantic checks that a semantically typed element has a
// numeric schema.
func (p *parser) numericForSemantic(e *elem, s *Schema) bool {
	if e.semantic == "" || s.Kind == schemaRef {
		return true
	}
	switch s.Kind {
	case SchemaDouble, SchemaFloat, SchemaInteger, SchemaLong, SchemaByte, SchemaShort, SchemaDecimal,
		SchemaUnsignedByte, SchemaUnsignedShort, SchemaUnsignedInteger, SchemaUnsignedLong:
		return true
	}
	p.addf("notRequiredType", e.id, "schema", e.props["schema"], "a %s with semantic type %s requires a numeric schema, not %s", e.class, e.semantic, s.Kind)
	return false
}

// invalidSemantic reports a semantic type on an element that may not have
// one; the unit the semantic type brought is then allowed by no type.
func (p *parser) invalidSemantic(e *elem, format string, args ...any) {
	p.addf("invalidCotype", e.id, "@type", e.n.get("@type"), format, args...)
	if u := e.props["unit"]; u != nil {
		p.addf("noTypeThatAllows", e.id, "unit", u, "no @type of %s allows property unit", e.id)
	}
}

// badMapKeySchema reports a Map key whose schema is not string, the only
// class the key's schema allows; the key is then left without a schema.
func (p *parser) badMapKeySchema(keyID string, x *node) {
	p.add("badType", keyID, "schema", x, "a Map key schema must be string")
	p.add("propertyCountBelowMin", keyID, "schema", x, "the Map key has no valid schema")
}

// uniqueIndex records the MQTT index of a member (0: none) and reports
// whether no sibling has the same one.
func (p *parser) uniqueIndex(seen *map[int]bool, index int, ownerID, prop string, at *node) bool {
	if index == 0 {
		return true
	}
	if *seen == nil {
		*seen = map[int]bool{}
	}
	if (*seen)[index] {
		p.addf("nonUniquePropertyValue", ownerID, prop, at, "index %d is used by more than one member", index)
		return false
	}
	(*seen)[index] = true
	return true
}

// countBelowMin reports a required object property that has no value: an
// empty list is below the minimum count, an absent property is missing.
func (p *parser) countBelowMin(e *elem, prop, msg string) {
	code := "missingObjectProperty"
	if contains(e.empty, prop) {
		code = "objectCountBelowMin"
	}
	p.add(code, e.id, prop, e.n, msg)
}
