package dtdl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// testdataDir is the shared corpus, relative to this package's directory.
const testdataDir = "../../../shared/testdata"

// conformanceCase is one test case of the official DTDL parser corpus.
type conformanceCase struct {
	Valid      bool              `json:"valid"`
	Options    []string          `json:"options"`
	Quirks     []string          `json:"quirks"`
	Input      []json.RawMessage `json:"input"`
	Resolution []struct {
		Request  []string          `json:"request"`
		Response []json.RawMessage `json:"response"`
	} `json:"resolution"`
	// PartialResolution holds what the resolver answers when asked for
	// layers of an element: the request maps a DTMI to layer names.
	PartialResolution []struct {
		Response []json.RawMessage `json:"response"`
	} `json:"partialResolution"`
	Expect struct {
		ParsingErrors []struct {
			ValidationID string `json:"ValidationID"`
		} `json:"parsingErrors"`
		UnresolvedIdentifiers []string `json:"unresolvedIdentifiers"`
	} `json:"expect"`
	Instances []struct {
		Subject  string `json:"subject"`
		Conforms bool   `json:"conforms"`
		Throws   bool   `json:"throws"`
		Submit   string `json:"submit"`
	} `json:"instances"`
}

func skipWithoutCorpus(t testing.TB) string {
	dir := filepath.Join(testdataDir, "dtdl-conformance", "test-cases")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("DTDL conformance corpus not found at %s (expected the shared testdata checkout beside the repository): %v", dir, err)
	}
	return dir
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	return json.Unmarshal(data, v)
}

// runCase parses a corpus case and returns whether it was accepted, the set of
// diagnostic codes, and instance disagreements.
func runCase(c *conformanceCase) (bool, []string, []string, error) {
	opts := Options{}
	for _, o := range c.Options {
		switch o {
		case "AllowUndefinedExtensions":
			opts.UndefinedExtensions = ExtensionsAllow
		case "DisallowUndefinedExtensions":
			opts.UndefinedExtensions = ExtensionsDisallow
		}
	}
	var docs []Document
	for i, in := range c.Input {
		docs = append(docs, Document{Name: fmt.Sprintf("input[%d]", i), Data: in})
	}
	for _, r := range c.Resolution {
		for i, in := range r.Response {
			docs = append(docs, Document{Name: fmt.Sprintf("resolution[%d]", i), Data: in})
		}
	}
	for _, r := range c.PartialResolution {
		for i, in := range r.Response {
			docs = append(docs, Document{Name: fmt.Sprintf("partialResolution[%d]", i), Data: in})
		}
	}
	itfs, err := Resolve(docs, nil, opts)
	var codes []string
	if err != nil {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			return false, nil, nil, err
		}
		seen := map[string]bool{}
		for _, d := range ve.Diagnostics {
			// The corpus lists identifiers that could not be resolved
			// apart from parsing errors.
			if d.Code == "unresolvedIdentifier" && len(c.Expect.UnresolvedIdentifiers) > 0 {
				continue
			}
			if !seen[d.Code] {
				seen[d.Code] = true
				codes = append(codes, d.Code)
			}
		}
		sort.Strings(codes)
	}
	var instBad []string
	for _, in := range c.Instances {
		var el any
		for _, itf := range itfs {
			if e, ok := itf.Element(in.Subject); ok {
				el = e
				break
			}
		}
		if el == nil {
			if d, ok := ParseDTMI(in.Subject); ok && strings.HasPrefix(in.Subject, "dtmi:dtdl:instance:Schema:") {
				if k, ok := primitiveTerm(d.Labels[len(d.Labels)-1], 3); ok {
					el = PrimitiveSchema(k)
				}
			}
		}
		s, isSchema := el.(*Schema)
		if in.Throws {
			if isSchema {
				instBad = append(instBad, fmt.Sprintf("%s: expected not a schema", in.Subject))
			}
			continue
		}
		if !isSchema {
			instBad = append(instBad, fmt.Sprintf("%s: subject not found", in.Subject))
			continue
		}
		dec := json.NewDecoder(strings.NewReader(in.Submit))
		dec.UseNumber()
		var v any
		got := false
		if err := dec.Decode(&v); err == nil && !dec.More() {
			got = s.Validate(v) == nil
		}
		if got != in.Conforms {
			instBad = append(instBad, fmt.Sprintf("%s %s: conforms=%v, want %v", in.Subject, in.Submit, got, in.Conforms))
		}
	}
	return err == nil, codes, instBad, nil
}

func expectedCodes(c *conformanceCase) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range c.Expect.ParsingErrors {
		code := e.ValidationID[strings.LastIndexByte(e.ValidationID, ':')+1:]
		if !seen[code] {
			seen[code] = true
			out = append(out, code)
		}
	}
	sort.Strings(out)
	return out
}

type groupScore struct {
	cases, verdictOK, codeCases, codesOK int
	bad                                  []string
}

// TestConformance runs the official DTDL parser corpus (DTDL v2 and v3)
// and prints, per group, how often the valid/invalid verdict and (for the
// generated cases) the set of error codes agree with it, against the targets
// of 99% and 95%; it fails when agreement falls below the recorded floors.
func TestConformance(t *testing.T) {
	dir := skipWithoutCorpus(t)
	groups := []string{"specification", "generated", "solecisms", "doc-examples"}
	scores := map[string]*groupScore{}
	total := &groupScore{}
	for _, g := range groups {
		files, _ := filepath.Glob(filepath.Join(dir, g, "*.json"))
		sc := &groupScore{}
		scores[g] = sc
		for _, f := range files {
			base := filepath.Base(f)
			if !strings.HasSuffix(base, "V2.json") && !strings.HasSuffix(base, "V3.json") {
				continue
			}
			var cases []*conformanceCase
			if g == "specification" {
				if err := readJSON(f, &cases); err != nil {
					t.Fatalf("read %s: %v", f, err)
				}
			} else {
				var c conformanceCase
				if err := readJSON(f, &c); err != nil {
					t.Fatalf("read %s: %v", f, err)
				}
				cases = []*conformanceCase{&c}
			}
			for i, c := range cases {
				name := base
				if len(cases) > 1 {
					name = fmt.Sprintf("%s[%d]", base, i)
				}
				ok, codes, instBad, err := runCase(c)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				sc.cases++
				want := expectedCodes(c)
				if ok == c.Valid && len(instBad) == 0 {
					sc.verdictOK++
				} else {
					sc.bad = append(sc.bad, fmt.Sprintf("%s: valid=%v want %v codes=%v want %v %v", name, ok, c.Valid, codes, want, instBad))
				}
				if g == "generated" {
					sc.codeCases++
					if strings.Join(codes, ",") == strings.Join(want, ",") {
						sc.codesOK++
					} else if ok == c.Valid {
						sc.bad = append(sc.bad, fmt.Sprintf("%s: codes=%v want %v", name, codes, want))
					}
				}
			}
		}
		total.cases += sc.cases
		total.verdictOK += sc.verdictOK
	}
	// DTMI syntax cases.
	{
		files, _ := filepath.Glob(filepath.Join(dir, "dtmis", "*.json"))
		sc := &groupScore{}
		scores["dtmis"] = sc
		for _, f := range files {
			var c struct {
				Valid  bool   `json:"valid"`
				IDText string `json:"idText"`
				Expect struct {
					MajorVersion, MinorVersion int
					Versionless, Fragment      string
					IsReserved                 bool
				} `json:"expect"`
			}
			if err := readJSON(f, &c); err != nil {
				t.Fatalf("read %s: %v", f, err)
			}
			sc.cases++
			d, ok := ParseDTMI(c.IDText)
			good := ok == c.Valid
			if ok && c.Valid {
				good = d.MajorVersion == c.Expect.MajorVersion && d.MinorVersion == c.Expect.MinorVersion &&
					d.Versionless == c.Expect.Versionless && d.Fragment == c.Expect.Fragment && d.IsReserved == c.Expect.IsReserved
			}
			if good {
				sc.verdictOK++
			} else {
				sc.bad = append(sc.bad, fmt.Sprintf("%s: got %+v ok=%v", filepath.Base(f), d, ok))
			}
		}
		total.cases += sc.cases
		total.verdictOK += sc.verdictOK
	}
	for _, g := range append(groups, "dtmis") {
		sc := scores[g]
		for _, b := range sc.bad {
			t.Logf("disagree %s: %s", g, b)
		}
	}
	for _, g := range append(groups, "dtmis") {
		sc := scores[g]
		line := fmt.Sprintf("%-14s verdict %5d/%5d = %6.2f%%", g, sc.verdictOK, sc.cases, pct(sc.verdictOK, sc.cases))
		if sc.codeCases > 0 {
			line += fmt.Sprintf("   codes %4d/%4d = %6.2f%%", sc.codesOK, sc.codeCases, pct(sc.codesOK, sc.codeCases))
		}
		t.Log(line)
		fmt.Println(line)
	}
	overall := pct(total.verdictOK, total.cases)
	fmt.Printf("%-14s verdict %5d/%5d = %6.2f%%\n", "all", total.verdictOK, total.cases, overall)
	// The targets are 99% verdict agreement overall and 95% error-code
	// agreement on the generated cases. The test fails below the floors,
	// which record what this parser has reached, so a regression fails
	// while the gap to the targets is printed.
	const (
		verdictTarget, verdictFloor = 99.0, 99.67
		codesTarget, codesFloor     = 95.0, 95.23
	)
	gen := scores["generated"]
	codes := pct(gen.codesOK, gen.codeCases)
	fmt.Printf("targets: verdict %.2f%% (target %.0f%%), generated codes %.2f%% (target %.0f%%)\n", overall, verdictTarget, codes, codesTarget)
	if overall < verdictFloor {
		t.Errorf("verdict agreement %.2f%% fell below %.2f%%", overall, verdictFloor)
	}
	if codes < codesFloor {
		t.Errorf("generated error-code agreement %.2f%% fell below %.2f%%", codes, codesFloor)
	}
}

func pct(a, b int) float64 {
	if b == 0 {
		return 100
	}
	return 100 * float64(a) / float64(b)
}
