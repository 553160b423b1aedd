package query

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected output of the script tests in testdata")

// TestScripts runs testdata/*.txt. A script is a sequence of blocks:
//
//	graph <file> [<model dir>...]   load a graph; scenarios/... is under the shared scenarios
//	query [pagesize=N] [params=<json>]
//	<query text, one or more lines>
//	----
//	<rows, one JSON value a line; "-- page N" between pages; or "error: ...">
//
// Blocks end at a blank line. go test -run TestScripts -update rewrites
// the expected output.
func TestScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runScript(t, file) })
	}
}

func resolveData(p string) string {
	if rest, ok := strings.CutPrefix(p, "scenarios/"); ok {
		return filepath.Join(scenarios, rest)
	}
	return filepath.Join("testdata", p)
}

func runScript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	var g *memGraph
	lines := strings.Split(string(data), "\n")
	failed := false
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		switch {
		case strings.HasPrefix(line, "graph "):
			out.WriteString(line + "\n")
			f := strings.Fields(line)[1:]
			dirs := make([]string, 0, len(f)-1)
			for _, d := range f[1:] {
				dirs = append(dirs, resolveData(d))
			}
			g = loadExplorerGraph(t, resolveData(f[0]), dirs...)
		case strings.HasPrefix(line, "query"):
			start := i + 1
			head := line
			var text []string
			for i++; i < len(lines) && lines[i] != "----"; i++ {
				text = append(text, lines[i])
			}
			var want []string
			for i++; i < len(lines) && lines[i] != ""; i++ {
				want = append(want, lines[i])
			}
			if g == nil {
				t.Fatalf("%s:%d: query before graph", file, start)
			}
			got := runQueryBlock(t, g, head, strings.Join(text, "\n"))
			out.WriteString(head + "\n" + strings.Join(text, "\n") + "\n----\n")
			for _, l := range got {
				out.WriteString(l + "\n")
			}
			out.WriteString("\n")
			if !*update && strings.Join(got, "\n") != strings.Join(want, "\n") {
				failed = true
				t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, start, strings.Join(text, " "), strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		default:
			if i == len(lines)-1 && line == "" {
				continue
			}
			out.WriteString(line + "\n")
		}
	}
	if *update {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if failed {
		t.Log("rerun with -update to accept the new output, and review the diff")
	}
}

// scriptCache runs every script query a second time, through one cache
// shared by all the scripts: queries of one shape bind their own literals
// to the plan of the first.
var scriptCache = NewCache(0)

func runQueryBlock(t *testing.T, g *memGraph, head, text string) []string {
	got := runPages(t, g, head, text, Run)
	cached := runPages(t, g, head, text, scriptCache.Run)
	if strings.Join(got, "\n") != strings.Join(cached, "\n") {
		t.Errorf("%s\nthrough the cache:\n%s\nwithout:\n%s", text, strings.Join(cached, "\n"), strings.Join(got, "\n"))
	}
	return got
}

// runPages runs a script query page by page with run.
func runPages(t *testing.T, g *memGraph, head, text string, run func(context.Context, Graph, string, Options) (*Result, error)) []string {
	opts := Options{}
	for _, f := range strings.Fields(head)[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "pagesize":
			opts.PageSize, _ = strconv.Atoi(v)
		case "params":
			if err := json.Unmarshal([]byte(v), &opts.Params); err != nil {
				t.Fatalf("params: %v", err)
			}
		default:
			t.Fatalf("unknown query option %q", k)
		}
	}
	var got []string
	for page := 1; ; page++ {
		res, err := run(context.Background(), g, text, opts)
		if err != nil {
			return append(got, "error: "+err.Error())
		}
		if page > 1 {
			got = append(got, fmt.Sprintf("-- page %d", page))
		}
		for _, r := range res.Rows {
			got = append(got, string(r))
		}
		if res.ContinuationToken == "" {
			return got
		}
		tok, err := DecodeToken(res.ContinuationToken)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Position != g.Position() || tok.Query != text {
			t.Fatalf("token %+v does not carry the query and position %d", tok, g.Position())
		}
		opts.Offset = tok.Offset
		if page > 1000 {
			t.Fatal("too many pages")
		}
	}
}

// TestDocQueriesParse parses every runnable query of the ADT documentation.
func TestDocQueriesParse(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(scenarios, "adt-docs-code/queries/queries.json"))
	if err != nil {
		t.Skipf("queries.json not available: %v", err)
	}
	var qs []struct {
		Tag, Query, Kind string
	}
	if err := json.Unmarshal(b, &qs); err != nil {
		t.Fatal(err)
	}
	// Typos in the documentation's own snippets: each must be rejected with
	// a message that points at the mistake.
	typos := map[string]string{
		"MatchNameAllExample":  "line 2, column 16: expected ')' to close (Building, found '-'",
		"MatchVariableExample": "line 1, column 24: expected FROM before DIGITALTWINS",
		"IsStringExample":      "line 2, column 6: expected DIGITALTWINS or RELATIONSHIPS after FROM, found 'DIGITIALTWINS'",
	}
	n := 0
	for _, q := range qs {
		switch q.Kind {
		case "example", "example-with-placeholders":
		case "negative-unsupported":
			_, err := ParseScript(q.Query)
			if err == nil || !strings.Contains(err.Error(), "sub-queries are not supported") {
				t.Errorf("%s: err = %v, want sub-queries are not supported", q.Tag, err)
			}
			continue
		default:
			continue
		}
		if q.Kind == "example-with-placeholders" {
			continue // T.<propertyName>.<mapKey> is a template
		}
		n++
		_, err := ParseScript(q.Query)
		if want, ok := typos[q.Tag]; ok {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: err = %v, want %q", q.Tag, err, want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v\n%s", q.Tag, err, q.Query)
		}
	}
	if n < 80 {
		t.Errorf("parsed %d example queries, want at least 80", n)
	}
}

// scriptQueries is the seed corpus of FuzzParse.
func scriptQueries(t testing.TB) []string {
	var out []string
	files, _ := filepath.Glob("testdata/*.txt")
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		var cur []string
		in := false
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "query"):
				in, cur = true, nil
			case l == "----" && in:
				out = append(out, strings.Join(cur, "\n"))
				in = false
			case in:
				cur = append(cur, l)
			}
		}
		fh.Close()
	}
	return out
}
