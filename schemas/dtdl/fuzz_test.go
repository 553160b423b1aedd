package dtdl

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F) {
	f.Add([]byte(`{"@context":"dtmi:dtdl:context;3","@id":"dtmi:a:b;1","@type":"Interface","contents":[{"@type":"Property","name":"p","schema":{"@type":"Map","mapKey":{"name":"k","schema":"string"},"mapValue":{"name":"v","schema":"double"}}}]}`))
	f.Add([]byte(`[{"@context":"dtmi:dtdl:context;2","@id":"dtmi:a:b;1","@type":"Interface","extends":"dtmi:a:b;1"}]`))
	dir := filepath.Join(testdataDir, "dtdl-conformance", "test-cases", "generated")
	files, _ := filepath.Glob(filepath.Join(dir, "*V[23].json"))
	for i, file := range files {
		if i%7 != 0 {
			continue
		}
		var c conformanceCase
		if err := readJSON(file, &c); err == nil && len(c.Input) > 0 {
			f.Add([]byte(c.Input[0]))
		}
	}
	for _, set := range []string{"energygrid", "building"} {
		files, _ := filepath.Glob(filepath.Join(testdataDir, set, "*", "*.json"))
		for i, file := range files {
			if i%40 != 0 {
				continue
			}
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
}

// FuzzParse checks that no input makes the parser panic or hang.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		itfs, err := Resolve([]Document{{Name: "fuzz", Data: data}}, nil, Options{})
		if err == nil {
			for _, itf := range itfs {
				for _, c := range itf.AllContents() {
					if c.Schema != nil {
						_ = c.Schema.Validate(nil)
					}
				}
			}
		}
	})
}

// FuzzParseDTMI checks the DTMI parser on arbitrary text.
func FuzzParseDTMI(f *testing.F) {
	for _, s := range []string{"dtmi:foo:bar;1", "dtmi:foo:bar;1.2#frag", "dtmi:;1", "dtmi:_a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseDTMI(s)
		if ok && d.Text != s {
			t.Fatalf("Text=%q, want %q", d.Text, s)
		}
	})
}

// FuzzValidate checks instance validation of arbitrary JSON values.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{`"P1Y"`, `"2024-02-29T00:00:00Z"`, `12`, `{"a":[1,2]}`, `"12:00:00+01:00"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseJSON([]byte(s))
		if err != nil || n.kind != jString {
			return
		}
		for k := SchemaBoolean; k <= SchemaMultiPolygon; k++ {
			_ = PrimitiveSchema(k).Validate(n.str)
		}
	})
}

// FuzzValidateNumber checks that ValidateNumber answers as Validate of the
// same json.Number does, for every primitive schema.
func FuzzValidateNumber(f *testing.F) {
	for _, s := range []string{"12", "-1", "255", "256", "1.5", "1e400", "-0", "4294967295", "9223372036854775808", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for k := SchemaBoolean; k <= SchemaMultiPolygon; k++ {
			sc := PrimitiveSchema(k)
			got, want := sc.ValidateNumber(s), sc.Validate(json.Number(s))
			if (got == nil) != (want == nil) || (got != nil && got.Error() != want.Error()) {
				t.Fatalf("schema %v, %q: ValidateNumber = %v, Validate = %v", k, s, got, want)
			}
		}
	})
}
