package dtdl

import "slices"

// ContentKind says what an interface content is.
type ContentKind uint8

// The kinds of interface contents.
const (
	KindProperty ContentKind = iota + 1
	KindTelemetry
	KindCommand
	KindRelationship
	KindComponent
)

// String returns the DTDL type name of the kind, such as "Property".
func (k ContentKind) String() string {
	switch k {
	case KindProperty:
		return "Property"
	case KindTelemetry:
		return "Telemetry"
	case KindCommand:
		return "Command"
	case KindRelationship:
		return "Relationship"
	case KindComponent:
		return "Component"
	}
	return "unknown"
}

// LocalizedString is a localizable text keyed by language code. A plain
// string in a model is stored under the key "en".
type LocalizedString map[string]string

// Interface is a resolved DTDL interface: its own declarations plus the
// flattened view of everything it inherits through extends.
//
// An Interface is immutable once resolved; it may be shared between
// goroutines and between Registry versions.
type Interface struct {
	// ID is the interface's DTMI.
	ID string
	// Version is the DTDL language version (2 or 3).
	Version int
	// Types lists the co-types given beside "Interface" in @type.
	Types []string
	// DisplayName is the localizable display name.
	DisplayName LocalizedString
	// Description is the localizable description.
	Description LocalizedString
	// Comment is the model author's comment.
	Comment string
	// Extends lists the DTMIs of the directly extended interfaces.
	Extends []string
	// Contents are the contents declared by this interface itself.
	Contents []*Content
	// Schemas are the reusable complex schemas declared in "schemas".
	Schemas []*Schema
	// File names the source document, when known.
	File string

	// Bases are the directly extended interfaces, resolved.
	Bases []*Interface

	all       []*Content          // flattened contents, own first then inherited
	byName    map[string]*Content // flattened contents by name
	ancestors []string            // sorted DTMIs of all transitive bases
	depth     int                 // longest extends chain below this interface
	rels      map[string]*Content
	comps     map[string]*Content
	elements  map[string]any // every element defined inside, by DTMI
}

// AllContents returns the flattened contents: own and inherited. Each
// Content's DefinedIn names the declaring interface. The slice must not be
// modified.
func (i *Interface) AllContents() []*Content { return i.all }

// Content returns the (possibly inherited) content with the given name.
func (i *Interface) Content(name string) (*Content, bool) {
	c, ok := i.byName[name]
	return c, ok
}

// Relationship returns the (possibly inherited) relationship with the given name.
func (i *Interface) Relationship(name string) (*Content, bool) {
	c, ok := i.rels[name]
	return c, ok
}

// Component returns the (possibly inherited) component with the given name.
func (i *Interface) Component(name string) (*Content, bool) {
	c, ok := i.comps[name]
	return c, ok
}

// Relationships returns the flattened relationships by name. The map must not be modified.
func (i *Interface) Relationships() map[string]*Content { return i.rels }

// Components returns the flattened components by name. The map must not be modified.
func (i *Interface) Components() map[string]*Content { return i.comps }

// Ancestors returns the DTMIs of every interface this one extends,
// transitively, sorted. The slice must not be modified.
func (i *Interface) Ancestors() []string { return i.ancestors }

// Extends reports whether the interface is id or extends id transitively.
// It does not allocate.
func (i *Interface) IsA(id string) bool {
	if i.ID == id {
		return true
	}
	_, ok := slices.BinarySearch(i.ancestors, id)
	return ok
}

// Content is one element of an interface's contents.
type Content struct {
	// ID is the element's DTMI, given or generated.
	ID string
	// Kind says whether this is a Property, Telemetry, Command, Relationship or Component.
	Kind ContentKind
	// Name is the content's name, unique within the flattened interface.
	Name string
	// DefinedIn is the DTMI of the interface that declares this content.
	DefinedIn string

	// annotates and overrides are the sibling content a ValueAnnotation
	// annotates and the property an Override overrides, or "".
	annotates, overrides string
	// index is the MQTT index of an Indexed telemetry, 0 if none.
	index int
	// Types lists co-types such as semantic types ("Temperature") or
	// extension types ("Historized").
	Types []string
	// Unit is the unit of a semantically typed Property or Telemetry.
	Unit string
	// DisplayName is the localizable display name.
	DisplayName LocalizedString
	// Description is the localizable description.
	Description LocalizedString
	// Comment is the model author's comment.
	Comment string
	// Schema is the value schema of a Property or Telemetry.
	Schema *Schema
	// Writable is set for writable Properties and Relationships.
	Writable bool

	// Target is a Relationship's target interface DTMI; "" means any.
	Target string
	// MinMultiplicity is a Relationship's minimum multiplicity (always 0).
	MinMultiplicity int
	// MaxMultiplicity is a Relationship's maximum multiplicity; 0 means unbounded.
	MaxMultiplicity int
	// Properties are a Relationship's properties.
	Properties []*Content

	// ComponentSchema is a Component's interface, resolved.
	ComponentSchema *Interface
	// ComponentSchemaID is the DTMI of a Component's interface.
	ComponentSchemaID string

	// Request is a Command's request payload, if any.
	Request *Field
	// Response is a Command's response payload, if any.
	Response *Field
	// CommandType is a v2 Command's "synchronous" or "asynchronous", if given.
	CommandType string
}

// RelationshipProperty returns the relationship property with the given name.
func (c *Content) RelationshipProperty(name string) (*Content, bool) {
	for _, p := range c.Properties {
		if p.Name == name {
			return p, true
		}
	}
	return nil, false
}

// Field is a named, typed member: an Object field, a Map key or value, or a
// Command payload.
type Field struct {
	// ID is the element's DTMI, given or generated.
	ID string
	// Name is the field name.
	Name string
	// Schema is the field's schema.
	Schema *Schema
	// Types lists co-types such as semantic types.
	Types []string
	// Unit is the unit of a semantically typed field.
	Unit string
	// DisplayName is the localizable display name.
	DisplayName LocalizedString
	// Description is the localizable description.
	Description LocalizedString
	// Comment is the model author's comment.
	Comment string
	// Nullable is set on a v3 CommandRequest or CommandResponse that may be null.
	Nullable bool
	// index is the MQTT index of an Indexed field, 0 if none.
	index int
}

// EnumValue is one value of an Enum.
type EnumValue struct {
	// ID is the element's DTMI, given or generated.
	ID string
	// Name is the value's name.
	Name string
	// Value is the enum value: a string, or an int for integer enums.
	Value any
	// DisplayName is the localizable display name.
	DisplayName LocalizedString
	// Description is the localizable description.
	Description LocalizedString
	// Comment is the model author's comment.
	Comment string
	// index is the MQTT index of an Indexed enum value, 0 if none.
	index int
}

// Element returns the element with the given DTMI defined inside the
// interface (the interface itself, a content, schema, field or enum value).
// The result is one of *Interface, *Content, *Schema, *Field or *EnumValue.
func (i *Interface) Element(id string) (any, bool) {
	if id == i.ID {
		return i, true
	}
	e, ok := i.elements[id]
	return e, ok
}
