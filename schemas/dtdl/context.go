package dtdl

import (
	"strings"
)

// Options adjust how documents are parsed. The zero value applies each DTDL
// version's defaults.
type Options struct {
	// UndefinedExtensions decides whether contexts that name undefined
	// extensions (and the undefined terms they bring) are accepted.
	// The default follows the language: allowed in v2, refused in v3.
	UndefinedExtensions ExtensionPolicy
}

// ExtensionPolicy says whether undefined extensions are accepted.
type ExtensionPolicy uint8

// The extension policies.
const (
	// ExtensionsDefault follows the DTDL version: allow in v2, disallow in v3.
	ExtensionsDefault ExtensionPolicy = iota
	// ExtensionsAllow accepts undefined extension contexts.
	ExtensionsAllow
	// ExtensionsDisallow refuses undefined extension contexts.
	ExtensionsDisallow
)

// Known extension contexts.
const (
	extQuantitative = 1 << iota
	extHistorization
	extAnnotation
	extOverriding
	extMQTT
	extIoTCentral
	extRequirement
	extLayering
	extUndefined // some context the parser does not know
	extMQTT2     // the MQTT extension, version 2 or later
	extMQTT3     // the MQTT extension, version 3
)

// scope is the JSON-LD context in force for an element.
type scope struct {
	version int
	ext     uint32
}

// has reports whether the extension is in scope.
func (s scope) has(ext uint32) bool { return s.ext&ext != 0 }

// knownExtensionContext maps a versioned extension context DTMI to its bit
// and the DTDL version it belongs to.
var knownExtensionContext = map[string]struct {
	bit     uint32
	version int
}{
	"dtmi:dtdl:extension:quantitativeTypes;1": {extQuantitative, 3},
	"dtmi:dtdl:extension:historization;1":     {extHistorization, 3},
	"dtmi:dtdl:extension:annotation;1":        {extAnnotation, 3},
	"dtmi:dtdl:extension:overriding;1":        {extOverriding, 3},
	"dtmi:dtdl:extension:mqtt;1":              {extMQTT, 3},
	// Later versions of the feature extensions, defined alongside DTDL v4,
	// are usable in DTDL v3 models with the same meaning.
	"dtmi:dtdl:extension:historization;2": {extHistorization, 3},
	"dtmi:dtdl:extension:annotation;2":    {extAnnotation, 3},
	"dtmi:dtdl:extension:overriding;2":    {extOverriding, 3},
	"dtmi:dtdl:extension:mqtt;2":          {extMQTT | extMQTT2, 3},
	"dtmi:dtdl:extension:mqtt;3":          {extMQTT | extMQTT2 | extMQTT3, 3},
	"dtmi:dtdl:extension:requirement;1":   {extRequirement, 3},
	// Layering serves both versions (version 0: any).
	"dtmi:dtdl:extension:layering;1": {extLayering, 0},
	"dtmi:iotcentral:context;2":      {extIoTCentral, 2},
}

// v2Ranges lists the properties of DTDL v3 elements whose values may be
// DTDL v2 elements: their ranges name the version-independent classes
// (Schema, Content, Interface, Property). Other properties, such as fields
// or enumValues, take only elements of their own version.
var v2Ranges = map[string]bool{
	"schema": true, "elementSchema": true, "contents": true, "extends": true, "properties": true,
}

// processContext reads an @context value. top is set for a document's root,
// where the DTDL context is required; otherwise the value extends parent,
// and v2OK says whether a DTDL v3 parent may hold a DTDL v2 element here.
func (p *parser) processContext(n *node, parent scope, top bool, elemID string, v2OK bool) (scope, bool) {
	s := parent
	var items []*node
	switch n.kind {
	case jString:
		items = []*node{n}
	case jArray:
		items = n.arr
		if len(items) == 0 && top {
			p.addf("emptyContext", elemID, "@context", n, "@context is empty")
			return s, false
		}
	default:
		p.addf("invalidContext", elemID, "@context", n, "@context must be a string or an array of strings")
		return s, false
	}
	sawDTDL, sawAffiliate := false, false
	ok := true
	for idx, it := range items {
		if it.kind == jObject {
			if idx != len(items)-1 {
				p.addf("localContextNotLast", elemID, "@context", it, "a local context definition must be the last element of @context")
			}
			p.addf("disallowedLocalContext", elemID, "@context", it, "local term definitions in @context are not supported")
			p.checkLocalTerms(it, elemID)
			ok = false
			continue
		}
		if it.kind != jString {
			p.addf("invalidContext", elemID, "@context", it, "each @context entry must be a string or a local definition")
			ok = false
			continue
		}
		v := it.str
		if base, ver, hasVer := strings.Cut(v, ";"); base == "dtmi:dtdl:context" {
			if !hasVer {
				p.addf("missingContextVersion", elemID, "@context", it, "context %q has no version", v)
				p.addf("invalidContextSpecifierForVersion", elemID, "@context", it, "context %q is not a valid context specifier without a version", v)
				ok = false
				continue
			}
			if ver, frag, hasFrag := strings.Cut(ver, "#"); hasFrag && (ver == "2" || ver == "3") {
				p.addf("disallowedContextFragment", elemID, "@context", it, "context %q may not have a fragment (%s)", v, frag)
				ok = false
				sawDTDL = true
				if s.version == 0 {
					s.version = int(ver[0] - '0')
				}
				continue
			}
			switch ver {
			case "2", "3":
				dv := int(ver[0] - '0')
				if !top && s.version != 0 && dv != s.version && !(s.version == 3 && dv == 2 && v2OK) {
					p.addf("inconsistentContext", elemID, "@context", it, "context %q differs from the document's DTDL version %d", v, s.version)
					ok = false
					continue
				}
				if sawAffiliate && (dv == 3 || sawDTDL) {
					p.addf("dtdlContextFollowsAffiliate", elemID, "@context", it, "the DTDL context must come first in @context")
					ok = false
				}
				s.version = dv
				sawDTDL = true
			default:
				if _, _, vok := parseVersion(ver); !vok {
					p.addf("invalidContextSpecifier", elemID, "@context", it, "context %q has an invalid version", v)
				} else {
					p.addf("unrecognizedContextVersion", elemID, "@context", it, "context %q: DTDL version %s is not supported (only 2 and 3)", v, ver)
				}
				ok = false
			}
			continue
		}
		sawAffiliate = true
		if !strings.HasPrefix(v, "dtmi:") {
			p.addf("nonDtmiContextSpecifier", elemID, "@context", it, "context %q is not a DTMI", v)
			ok = false
			continue
		}
		d, valid := ParseDTMI(v)
		if !valid {
			p.addf("invalidContextSpecifier", elemID, "@context", it, "context %q is not a valid DTMI", v)
			ok = false
			continue
		}
		if d.Fragment != "" {
			p.addf("disallowedContextFragment", elemID, "@context", it, "context %q may not have a fragment", v)
			ok = false
			continue
		}
		if d.MajorVersion == 0 {
			p.addf("missingContextVersion", elemID, "@context", it, "context %q has no version", v)
			p.addf("invalidContextSpecifierForVersion", elemID, "@context", it, "context %q is not a valid context specifier without a version", v)
			ok = false
			continue
		}
		if k, known := knownExtensionContext[v]; known {
			// An extension may be named in a model of any DTDL version;
			// its types then apply only to the elements of the versions
			// they are defined for, which the co-type checks report.
			s.ext |= k.bit
			continue
		}
		s.ext |= extUndefined
		if !p.allowUndefined(s.version) && knownExtensionBase(d.Versionless) {
			p.addf("unresolvableContextVersion", elemID, "@context", it, "context %q names a version of the extension that is not defined", v)
			ok = false
		} else if !p.allowUndefined(s.version) {
			p.addf("unresolvableContextSpecifier", elemID, "@context", it, "context %q names an undefined extension", v)
			ok = false
		}
	}
	if top && !sawDTDL {
		p.addf("missingDtdlContext", elemID, "@context", n, "@context must include the DTDL context (dtmi:dtdl:context;2 or ;3)")
		return s, false
	}
	return s, ok
}

// allowUndefined reports whether undefined extensions are accepted in the
// given DTDL version.
func (p *parser) allowUndefined(version int) bool {
	switch p.opts.UndefinedExtensions {
	case ExtensionsAllow:
		return true
	case ExtensionsDisallow:
		return false
	}
	return version == 2
}

// localTermChars are the characters a local term may hold besides letters
// and digits.
const localTermChars = "@-._~!$&'()*+,;="

// checkLocalTerms reports the problems of each term definition of a local
// context, which is refused as a whole, so that every problem is known.
func (p *parser) checkLocalTerms(ctx *node, elemID string) {
	for _, m := range ctx.obj {
		term := m.key
		switch {
		case term == "":
			p.add("localTermEmpty", elemID, "@context", m.val, "@context defines an empty term")
			continue
		case term == "dtmi":
			p.add("localTermSchemePrefix", elemID, "@context", m.val, "@context may not define the term dtmi")
			continue
		case !validLocalTerm(term):
			p.addf("localTermInvalid", elemID, "@context", m.val, "@context term %q holds invalid characters", term)
			continue
		case reservedTerm(term):
			p.addf("localTermReserved", elemID, "@context", m.val, "@context term %q is defined by DTDL", term)
			continue
		}
		val := m.val
		switch val.kind {
		case jString:
		case jObject:
			id := val.get("@id")
			if id == nil {
				p.addf("termDefinitionMissingIdProperty", elemID, "@context", val, "definition of term %q has no @id", term)
				continue
			}
			if id.kind != jString {
				p.addf("termDefinitionIdPropertyNotString", elemID, "@context", id, "@id of term %q must be a string", term)
				continue
			}
			val = id
		default:
			p.addf("termDefinitionNotStringOrObject", elemID, "@context", val, "definition of term %q must be a string or an object", term)
			continue
		}
		iri := val.str
		if strings.HasPrefix(iri, "dtmi:") {
			if _, ok := ParseDTMI(iri); !ok && !validDTMIPrefix(iri) {
				p.addf("localTermDefinitionInvalidDtmi", elemID, "@context", val, "term %q maps to the invalid DTMI %q", term, iri)
			}
			continue
		}
		if !validURI(iri) {
			p.addf("localTermDefinitionInvalidUri", elemID, "@context", val, "term %q maps to the invalid URI %q", term, iri)
		}
	}
}

func validLocalTerm(t string) bool {
	if t[0] == '@' {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(localTermChars, r)) {
			return false
		}
	}
	return true
}

// reservedTerm reports whether the DTDL context or the quantitative types
// extension defines the term.
func reservedTerm(t string) bool {
	if dtdlTerms[t] || abstractClasses[t] || t == "synchronous" || t == "asynchronous" {
		return true
	}
	if _, ok := materialClasses[t]; ok {
		return true
	}
	if _, ok := primitiveSchemaTerms[t]; ok {
		return true
	}
	if _, ok := semanticUnitType[t]; ok {
		return true
	}
	_, ok := unitTypes[t]
	return ok
}

// validDTMIPrefix reports whether s is a DTMI prefix such as "dtmi:foo:".
func validDTMIPrefix(s string) bool {
	rest := strings.TrimPrefix(s, "dtmi:")
	if !strings.HasSuffix(rest, ":") || strings.ContainsAny(rest, ";#") {
		return false
	}
	_, ok := ParseDTMI("dtmi:" + rest + "x;1")
	return ok
}

// validURI reports whether s is an absolute URI with a hierarchical or
// opaque part that JSON-LD accepts as an IRI.
func validURI(s string) bool {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || scheme == "" || rest == "" {
		return false
	}
	for i, r := range scheme {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')) {
			return false
		}
	}
	if scheme == "http" || scheme == "https" {
		return strings.HasPrefix(rest, "//")
	}
	return !strings.ContainsAny(s, " <>\"{}|^`")
}

// knownExtensionBase reports whether a versionless context DTMI names an
// extension the parser knows in some version.
func knownExtensionBase(versionless string) bool {
	for k := range knownExtensionContext {
		if base, _, _ := strings.Cut(k, ";"); base == versionless {
			return true
		}
	}
	return false
}
