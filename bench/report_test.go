package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseBench(t *testing.T) {
	out := `goos: linux
BenchmarkAppend/batch=1000/appenders=1-2   	     100	  512345 ns/op	 1951234 events/s	  1200 B/op	       3 allocs/op
BenchmarkRead-2 	 10	 100 ns/op
PASS
`
	rs := ParseBench(strings.NewReader(out))
	if len(rs) != 2 {
		t.Fatalf("parsed %d results, want 2", len(rs))
	}
	if rs[0].Name != "BenchmarkAppend/batch=1000/appenders=1" || rs[0].Metrics["events/s"] != 1951234 {
		t.Fatalf("got %+v", rs[0])
	}
	var buf bytes.Buffer
	Markdown(&buf, Suite{Title: "t", Package: "p", Pattern: "."}, rs)
	if !strings.Contains(buf.String(), "| Append/batch=1000/appenders=1 | 1951234 | 512345 | 1200 | 3.00 |") {
		t.Fatalf("table:\n%s", buf.String())
	}
}
