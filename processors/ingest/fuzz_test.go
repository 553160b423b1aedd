package ingest

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecode checks that Decode never panics, that every value it hands out
// is valid JSON of the kind it claims, and that it accepts an array only
// when encoding/json agrees the whole body is valid.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`[{"twinId":"a","t":1.5e3,"s":"x\u00e9","b":true,"n":null,"o":{"x":[1,2]}}]`,
		"{\"deviceId\":\"d\",\"time\":\"2024-01-01T00:00:00Z\",\"v\":-0}\n{bad\n{\"twinId\":\"b\",\"v\":1}",
		`[]`, ``, `[`, `{"twinId":1}`, "\"\\ud800\"", `[{"a":01}]`, `{"a":"\u12"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		array := bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("["))
		var sources [][2]string
		err := Decode(body, func(p *Point) {
			sources = append(sources, [2]string{p.Twin, p.Time})
			for _, fl := range p.Fields {
				if !json.Valid(fl.Raw) {
					t.Fatalf("field %q: invalid JSON %q", fl.Name, fl.Raw)
				}
				var name string
				if err := json.Unmarshal(fl.RawName, &name); err != nil || name != fl.Name {
					t.Fatalf("name %q does not decode to %q: %v", fl.RawName, fl.Name, err)
				}
				want := map[byte]Kind{'"': KindString, '{': KindObject, '[': KindArray, 't': KindBool, 'f': KindBool, 'n': KindNull}[fl.Raw[0]]
				if want == 0 {
					want = KindNumber
				}
				if fl.Kind != want {
					t.Fatalf("field %q kind=%d, want %d", fl.Raw, fl.Kind, want)
				}
			}
			obj := appendBody(nil, p.Fields)
			if !json.Valid(obj) {
				t.Fatalf("body %q is not valid JSON", obj)
			}
		}, func(int, error) {})
		if array && err == nil && !json.Valid(body) {
			t.Fatalf("accepted an invalid array %q", body)
		}
		if array && err == nil {
			// The reserved members decode as encoding/json decodes them.
			var objs []map[string]json.RawMessage
			if json.Unmarshal(body, &objs) != nil || len(objs) != len(sources) {
				t.Fatalf("%q: %d points, encoding/json disagrees", body, len(sources))
			}
			for i, o := range objs {
				var want [2]string
				for j, k := range [2]string{keyTwin, keyTime} {
					if raw, ok := o[k]; ok {
						json.Unmarshal(raw, &want[j])
					}
				}
				if sources[i] != want {
					t.Fatalf("%q: point %d has twinId, time %q, encoding/json gives %q", body, i, sources[i], want)
				}
			}
		}
	})
}
