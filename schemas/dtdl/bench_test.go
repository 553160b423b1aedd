package dtdl

import (
	"encoding/json"
	"testing"
)

func benchResolve(b *testing.B, docs []Document) {
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Resolve(docs, nil, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(docs))*float64(b.N)/b.Elapsed().Seconds(), "models/s")
}

// BenchmarkResolve measures parse + resolve + validate of whole ontologies.
func BenchmarkResolve(b *testing.B) {
	b.Run("set=building", func(b *testing.B) { benchResolve(b, loadSet(b, "building")) })
	b.Run("set=energygrid", func(b *testing.B) { benchResolve(b, loadSet(b, "energygrid")) })
	b.Run("set=pnp-models", func(b *testing.B) {
		// The whole set holds several versions of models that reuse nested
		// ids, so it is resolved file by file against the models loaded so far.
		docs := loadSet(b, "pnp-models")
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			known := map[string]*Interface{}
			for _, d := range docs {
				itfs, err := Resolve([]Document{d}, known, Options{})
				if err != nil {
					continue
				}
				for _, itf := range itfs {
					if known[itf.ID] == nil {
						known[itf.ID] = itf
					}
				}
			}
		}
		b.ReportMetric(float64(len(docs))*float64(b.N)/b.Elapsed().Seconds(), "models/s")
	})
}

func buildingRegistry(b *testing.B) *Registry {
	reg, _, err := NewRegistry(Options{}).Add(loadSet(b, "building"))
	if err != nil {
		b.Fatal(err)
	}
	return reg
}

// BenchmarkLookup measures the hot-path lookups: Get, IsOfModel, content
// lookup by name and Descendants. All must be allocation-free.
func BenchmarkLookup(b *testing.B) {
	reg := buildingRegistry(b)
	const room = "dtmi:digitaltwins:rec_3_3:core:Room;1"
	const space = "dtmi:digitaltwins:rec_3_3:core:Space;1"
	if !reg.IsOfModel(room, space) {
		b.Fatalf("IsOfModel(Room, Space)=false, want true")
	}
	b.Run("op=Get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := reg.Get(room); !ok {
				b.Fatal("not found")
			}
		}
	})
	b.Run("op=IsOfModel", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !reg.IsOfModel(room, space) {
				b.Fatal("want true")
			}
		}
	})
	b.Run("op=IsOfModelMiss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if reg.IsOfModel(space, room) {
				b.Fatal("want false")
			}
		}
	})
	b.Run("op=Descendants", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if len(reg.Descendants(space)) == 0 {
				b.Fatal("no descendants")
			}
		}
	})
	itf, _ := reg.Get(room)
	b.Run("op=Content", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := itf.Content("isPartOf"); !ok {
				b.Fatal("not found")
			}
		}
	})
}

// BenchmarkValidate measures instance validation of property values.
func BenchmarkValidate(b *testing.B) {
	cases := []struct {
		name  string
		kind  SchemaKind
		value any
	}{
		{"schema=integer", SchemaInteger, json.Number("42")},
		{"schema=double", SchemaDouble, json.Number("21.5")},
		{"schema=string", SchemaString, "hello"},
		{"schema=dateTime", SchemaDateTime, "2024-05-01T12:30:00.25Z"},
		{"schema=duration", SchemaDuration, "P3Y6M4DT12H30M5S"},
	}
	for _, c := range cases {
		s := PrimitiveSchema(c.kind)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Validate(c.value); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
