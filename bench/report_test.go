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
BenchmarkCut/x=1-2 	2026/11/26 01:52:00 WARN something logged meanwhile err="context canceled"
       3	 116799545 ns/op	    856168 events/s
PASS
`
	rs := ParseBench(strings.NewReader(out))
	if len(rs) != 3 {
		t.Fatalf("parsed %d results, want 3", len(rs))
	}
	if rs[2].Name != "BenchmarkCut/x=1" || rs[2].Iters != 3 || rs[2].Metrics["events/s"] != 856168 {
		t.Fatalf("the result a log line cut: %+v", rs[2])
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
