package dtdl

// SchemaKind says what kind of value a Schema describes.
type SchemaKind uint8

// The schema kinds: primitives, geospatial schemas and complex schemas.
const (
	SchemaBoolean SchemaKind = iota + 1
	SchemaDate
	SchemaDateTime
	SchemaDouble
	SchemaDuration
	SchemaFloat
	SchemaInteger
	SchemaLong
	SchemaString
	SchemaTime
	// DTDL v3 only.
	SchemaByte
	SchemaBytes
	SchemaDecimal
	SchemaShort
	SchemaUnsignedByte
	SchemaUnsignedShort
	SchemaUnsignedInteger
	SchemaUnsignedLong
	SchemaUUID
	// Geospatial (GeoJSON) schemas.
	SchemaPoint
	SchemaLineString
	SchemaPolygon
	SchemaMultiPoint
	SchemaMultiLineString
	SchemaMultiPolygon
	// Complex schemas.
	SchemaArray
	SchemaEnum
	SchemaMap
	SchemaObject

	schemaRef // unresolved reference by DTMI, replaced during resolution
)

// primitiveSchemaTerms maps the DTDL term of each non-complex schema to its kind
// and the first DTDL version that defines it.
var primitiveSchemaTerms = map[string]struct {
	kind    SchemaKind
	version int
}{
	"boolean": {SchemaBoolean, 2}, "date": {SchemaDate, 2}, "dateTime": {SchemaDateTime, 2},
	"double": {SchemaDouble, 2}, "duration": {SchemaDuration, 2}, "float": {SchemaFloat, 2},
	"integer": {SchemaInteger, 2}, "long": {SchemaLong, 2}, "string": {SchemaString, 2},
	"time": {SchemaTime, 2},
	"byte": {SchemaByte, 3}, "bytes": {SchemaBytes, 3}, "decimal": {SchemaDecimal, 3},
	"short": {SchemaShort, 3}, "unsignedByte": {SchemaUnsignedByte, 3},
	"unsignedShort": {SchemaUnsignedShort, 3}, "unsignedInteger": {SchemaUnsignedInteger, 3},
	"unsignedLong": {SchemaUnsignedLong, 3}, "uuid": {SchemaUUID, 3},
	"point": {SchemaPoint, 2}, "lineString": {SchemaLineString, 2}, "polygon": {SchemaPolygon, 2},
	"multiPoint": {SchemaMultiPoint, 2}, "multiLineString": {SchemaMultiLineString, 2},
	"multiPolygon": {SchemaMultiPolygon, 2},
}

var schemaKindNames = [...]string{
	SchemaBoolean: "boolean", SchemaDate: "date", SchemaDateTime: "dateTime", SchemaDouble: "double",
	SchemaDuration: "duration", SchemaFloat: "float", SchemaInteger: "integer", SchemaLong: "long",
	SchemaString: "string", SchemaTime: "time", SchemaByte: "byte", SchemaBytes: "bytes",
	SchemaDecimal: "decimal", SchemaShort: "short", SchemaUnsignedByte: "unsignedByte",
	SchemaUnsignedShort: "unsignedShort", SchemaUnsignedInteger: "unsignedInteger",
	SchemaUnsignedLong: "unsignedLong", SchemaUUID: "uuid", SchemaPoint: "point",
	SchemaLineString: "lineString", SchemaPolygon: "polygon", SchemaMultiPoint: "multiPoint",
	SchemaMultiLineString: "multiLineString", SchemaMultiPolygon: "multiPolygon",
	SchemaArray: "Array", SchemaEnum: "Enum", SchemaMap: "Map", SchemaObject: "Object",
	schemaRef: "reference",
}

// String returns the DTDL term of the kind: "integer", "Object", ...
func (k SchemaKind) String() string {
	if int(k) < len(schemaKindNames) && schemaKindNames[k] != "" {
		return schemaKindNames[k]
	}
	return "unknown"
}

// IsComplex reports whether the kind is Array, Enum, Map or Object.
func (k SchemaKind) IsComplex() bool { return k >= SchemaArray && k <= SchemaObject }

// Schema describes the values of a Property, Telemetry, field or payload.
// Primitive schemas are shared singletons; complex schemas carry their parts.
type Schema struct {
	// ID is the DTMI of the schema: given, generated for inline complex
	// schemas, or the standard DTMI of a primitive schema.
	ID string
	// Kind is the schema kind.
	Kind SchemaKind
	// Types lists co-types given beside the schema type.
	Types []string
	// DisplayName is the localizable display name.
	DisplayName LocalizedString
	// Description is the localizable description.
	Description LocalizedString
	// Comment is the model author's comment.
	Comment string

	// ElementSchema is an Array's element schema.
	ElementSchema *Schema
	// Fields are an Object's fields.
	Fields []*Field
	// MapKey is a Map's key.
	MapKey *Field
	// MapValue is a Map's value.
	MapValue *Field
	// ValueSchema is an Enum's value schema: SchemaInteger or SchemaString.
	ValueSchema SchemaKind
	// EnumValues are an Enum's values.
	EnumValues []*EnumValue

	ref    string // the referenced DTMI while Kind is schemaRef
	line   int
	doc    int
	parsed *element // the element the schema was parsed from
}

// primitiveSchemas holds the singleton Schema of each primitive kind, by DTDL version.
var primitiveSchemas [4][SchemaMultiPolygon + 1]*Schema

func init() {
	for term, p := range primitiveSchemaTerms {
		for v := 2; v <= 3; v++ {
			prefix := "dtmi:dtdl:instance:Schema:"
			if p.kind >= SchemaPoint {
				prefix = "dtmi:standard:schema:geospatial:"
			}
			primitiveSchemas[v][p.kind] = &Schema{ID: prefix + term + ";" + string(rune('0'+v)), Kind: p.kind}
		}
	}
}

// PrimitiveSchema returns the shared Schema of a primitive or geospatial
// kind, as defined by DTDL v3, or nil for complex kinds.
func PrimitiveSchema(k SchemaKind) *Schema {
	if k == 0 || k > SchemaMultiPolygon {
		return nil
	}
	return primitiveSchemas[3][k]
}

// Field returns the Object field with the given name.
func (s *Schema) Field(name string) (*Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return nil, false
}
