package dtdl

import (
	"regexp"
	"strconv"
	"strings"
)

// adjunctType is a supplemental type an extension defines: the classes
// (and the DTDL version of those classes) it may be applied to, the
// co-types it requires, and the properties it brings.
type adjunctType struct {
	ext uint32 // the extension context that defines the term
	// hosts are the classes the type may be applied to, all of DTDL
	// version hostVersion.
	hosts       []string
	hostVersion int
	// cocotypes must be present beside the type.
	cocotypes []string
	props     []adjunctProp
	// schemaOK, when set, says which schemas the element may have; an
	// element with another is reported with schemaCode.
	schemaOK   func(*Schema) bool
	schemaCode string
}

// adjunctProp is a literal property an adjunct type brings.
type adjunctProp struct {
	term     string
	kind     string // "string", "integer" or "duration"
	required bool
	pattern  *regexp.Regexp
	min      int  // for integers, the least value (inclusive)
	unique   bool // values must differ among the element's siblings
	ext      uint32
}

// mqttTopic is the pattern of an MQTT topic: slash-separated labels and
// brace-enclosed tokens.
var mqttTopic = regexp.MustCompile(`^(?:(?:[!%-*,-.0-z|~][!$-*,-.0-z|~]*)|(?:{(?:[A-Za-z]+:)?[A-Za-z]+}))(?:/(?:(?:[!$-*,-.0-z|~]+)|(?:{(?:[A-Za-z]+:)?[A-Za-z]+})))*$`)

// durationPattern is an ISO 8601 duration.
var durationPattern = regexp.MustCompile(`^P(?:(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?)(?:T(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$`)

// adjunctTypes are the supplemental types of the feature extensions
// (MQTT, historization, annotation, overriding, requirement) and of the
// IoT Central partner extension.
var adjunctTypes = map[string]*adjunctType{
	"Historized":      {ext: extHistorization, hosts: []string{"Property", "Telemetry"}, hostVersion: 3},
	"ValueAnnotation": {ext: extAnnotation, hosts: []string{"Property", "Telemetry"}, hostVersion: 3},
	"Override":        {ext: extOverriding, hosts: []string{"Property"}, hostVersion: 3, cocotypes: []string{"ValueAnnotation"}},
	"Required":        {ext: extRequirement, hosts: []string{"Field"}, hostVersion: 3},
	"Mqtt": {ext: extMQTT, hosts: []string{"Interface"}, hostVersion: 3, props: []adjunctProp{
		{term: "telemetryTopic", kind: "string", pattern: mqttTopic},
		{term: "commandTopic", kind: "string", pattern: mqttTopic},
		{term: "payloadFormat", kind: "string", required: true},
		{term: "telemServiceGroupId", kind: "string", pattern: mqttTopic, ext: extMQTT2},
		{term: "cmdServiceGroupId", kind: "string", pattern: mqttTopic, ext: extMQTT2},
	}},
	"Idempotent": {ext: extMQTT, hosts: []string{"Command"}, hostVersion: 3},
	"Cacheable": {ext: extMQTT, hosts: []string{"Command"}, hostVersion: 3, cocotypes: []string{"Idempotent"}, props: []adjunctProp{
		{term: "ttl", kind: "duration", required: true},
	}},
	"Indexed": {ext: extMQTT, hosts: []string{"Telemetry", "Field", "EnumValue"}, hostVersion: 3, props: []adjunctProp{
		{term: "index", kind: "integer", required: true, min: 1, unique: true},
	}},
	"Transparent":  {ext: extMQTT2, hosts: []string{"CommandRequest", "CommandResponse"}, hostVersion: 3, schemaOK: isObjectSchema, schemaCode: "notRequiredType"},
	"Result":       {ext: extMQTT3, hosts: []string{"Object"}, hostVersion: 3},
	"NormalResult": {ext: extMQTT3, hosts: []string{"Field"}, hostVersion: 3},
	"ErrorResult":  {ext: extMQTT3, hosts: []string{"Field"}, hostVersion: 3},
	"Error":        {ext: extMQTT3, hosts: []string{"Object"}, hostVersion: 3},
	"ErrorMessage": {ext: extMQTT3, hosts: []string{"Field"}, hostVersion: 3},

	"State":              {ext: extIoTCentral, hosts: []string{"Property", "Telemetry"}, hostVersion: 2, schemaOK: isEnumSchema, schemaCode: "notRequiredType"},
	"Event":              {ext: extIoTCentral, hosts: []string{"Property", "Telemetry"}, hostVersion: 2, schemaOK: isNumericOrString, schemaCode: "notRequiredType"},
	"Location":           {ext: extIoTCentral, hosts: []string{"Property", "Telemetry"}, hostVersion: 2, schemaOK: isLocationSchema, schemaCode: "notRequiredValue"},
	"VelocityVector":     {ext: extIoTCentral, hosts: []string{"Property", "Telemetry"}, hostVersion: 2, schemaOK: isVectorSchema, schemaCode: "notRequiredValue"},
	"AccelerationVector": {ext: extIoTCentral, hosts: []string{"Property", "Telemetry"}, hostVersion: 2, schemaOK: isVectorSchema, schemaCode: "notRequiredValue"},
}

func isObjectSchema(s *Schema) bool { return s.Kind == SchemaObject }
func isEnumSchema(s *Schema) bool   { return s.Kind == SchemaEnum }
func isVectorSchema(s *Schema) bool { return s == iotCentralSchemas["vector"] }

func isNumericOrString(s *Schema) bool {
	switch s.Kind {
	case SchemaDouble, SchemaFloat, SchemaInteger, SchemaLong, SchemaString:
		return true
	}
	return false
}

func isLocationSchema(s *Schema) bool {
	switch s.Kind {
	case SchemaPoint, SchemaMultiPoint, SchemaLineString, SchemaMultiLineString, SchemaPolygon, SchemaMultiPolygon:
		return true
	}
	return s == iotCentralSchemas["geopoint"]
}

// adjunctSchema checks the schema of e against what its adjunct co-types
// require. References, resolved later, are not checked.
func (p *parser) adjunctSchema(e *elem, s *Schema) bool {
	if s == nil || s.Kind == schemaRef {
		return true
	}
	for _, c := range e.cotypes {
		a := adjunctTypes[c]
		if a == nil || a.schemaOK == nil || contains(e.refused, c) || a.schemaOK(s) {
			continue
		}
		p.addf(a.schemaCode, e.id, "schema", e.props["schema"], "co-type %s does not allow this schema", c)
		return false
	}
	return true
}

// adjunctPropTerms maps each property term an adjunct type brings to the
// extension that defines it.
var adjunctPropTerms = func() map[string]uint32 {
	m := map[string]uint32{}
	for _, a := range adjunctTypes {
		for _, pr := range a.props {
			ext := pr.ext
			if ext == 0 {
				ext = a.ext
			}
			m[pr.term] = ext
		}
	}
	return m
}()

// checkHosts reports the adjunct co-types of e that its class, or the DTDL
// version of its class, does not allow, and those missing a co-type they
// require. It reports whether all are allowed, and records the refused
// ones so that the properties they bring are reported as allowed by no
// type.
func (p *parser) checkHosts(e *elem, tn *node) bool {
	ok := true
	for _, c := range e.cotypes {
		a := adjunctTypes[c]
		if a == nil {
			continue
		}
		switch {
		case !contains(a.hosts, e.class):
			p.addf("invalidCotype", e.id, "@type", tn, "%s may only be applied to %v, not a %s", c, a.hosts, e.class)
			p.hasCocotypes(e, c, a, tn)
		case e.s.version != a.hostVersion && !p.layered[e.n]:
			// The DTDL version of a co-type is checked where the
			// element is defined; an element a layer adds is defined
			// in the layer, which is refused for its identifier.
			p.addf("invalidCotypeVersion", e.id, "@type", tn, "%s may only be applied to elements of DTDL v%d", c, a.hostVersion)
		default:
			if !p.hasCocotypes(e, c, a, tn) {
				ok = false
			}
			continue
		}
		e.refused = append(e.refused, c)
		ok = false
	}
	return ok
}

func (p *parser) hasCocotypes(e *elem, c string, a *adjunctType, tn *node) bool {
	for _, need := range a.cocotypes {
		if !contains(e.cotypes, need) {
			p.addf("missingCocotype", e.id, "@type", tn, "%s requires co-type %s", c, need)
			return false
		}
	}
	return true
}

// refusedBrings reports whether a co-type of e that was refused brings the
// property term.
func (e *elem) refusedBrings(term string) bool {
	for _, c := range e.refused {
		if a := adjunctTypes[c]; a != nil {
			for _, pr := range a.props {
				if pr.term == term {
					return true
				}
			}
		}
		if c == "ValueAnnotation" && term == "annotates" {
			return true
		}
	}
	return false
}

// adjunctAllows reports whether an accepted adjunct co-type of e brings the
// property term.
func (e *elem) adjunctAllows(term string) bool {
	for _, c := range e.cotypes {
		a := adjunctTypes[c]
		if a == nil || contains(e.refused, c) {
			continue
		}
		for _, pr := range a.props {
			if pr.term == term && (pr.ext == 0 || e.s.has(pr.ext)) {
				return true
			}
		}
	}
	return false
}

// adjunctValues checks the properties the adjunct co-types of e bring and
// returns the index an Indexed element has (0 when none).
func (p *parser) adjunctValues(e *elem) (int, bool) {
	index, ok := 0, true
	for _, c := range e.cotypes {
		a := adjunctTypes[c]
		if a == nil || contains(e.refused, c) {
			continue
		}
		for _, pr := range a.props {
			if pr.ext != 0 && !e.s.has(pr.ext) {
				continue
			}
			n := e.props[pr.term]
			if n == nil {
				if pr.required {
					p.addf("missingSupplementalLiteralProperty", e.id, pr.term, e.n, "co-type %s requires property %s", c, pr.term)
					ok = false
				}
				continue
			}
			switch pr.kind {
			case "string", "duration":
				s, good := p.literalString(e, pr.term, n, 0)
				if !good {
					ok = false
					continue
				}
				if pr.kind == "duration" && (!durationPattern.MatchString(s) || s == "P" || strings.HasSuffix(s, "T")) {
					p.addf("durationInvalid", e.id, pr.term, n, "%s %q is not an ISO 8601 duration", pr.term, s)
					ok = false
				} else if pr.pattern != nil && !pr.pattern.MatchString(s) {
					p.addf("stringInvalid", e.id, pr.term, n, "%s %q does not match the required pattern", pr.term, s)
					ok = false
				}
			case "integer":
				i, good := p.literalInt(e, pr.term, n)
				if !good {
					ok = false
					continue
				}
				if i < pr.min {
					p.addf("valueBelowMin", e.id, pr.term, n, "%s must be at least %s", pr.term, strconv.Itoa(pr.min))
					ok = false
				}
				if pr.unique {
					index = i
				}
			}
		}
	}
	return index, ok
}
