package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Suite is one group of Go benchmarks run by `make bench`.
type Suite struct {
	// Title heads the suite's section in RESULTS.md.
	Title string
	// Package is the Go package path, relative to the module root.
	Package string
	// Pattern selects benchmarks (go test -bench).
	Pattern string
	// Benchtime is passed to -benchtime; default "1x" style values keep
	// long workloads bounded. Empty means Go's default.
	Benchtime string
	// Env adds environment variables for the run.
	Env []string
	// Notes are printed under the table: targets, and what bounds a figure.
	Notes string
}

// Result is one parsed benchmark line.
type Result struct {
	Name    string
	Iters   int64
	Metrics map[string]float64 // unit → value, including ns/op, B/op, allocs/op
	Units   []string           // in order of appearance
}

// ParseBench parses `go test -bench` output.
func ParseBench(r io.Reader) []Result {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	name := "" // a benchmark's name whose figures a log line cut off
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if name != "" && len(f) >= 3 {
			// The figures continue on the next line, after what the
			// benchmark logged: "<iterations> <value> <unit> ...".
			if _, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				f = append([]string{name}, f...)
			}
		}
		name = ""
		if len(f) >= 1 && strings.HasPrefix(f[0], "Benchmark") && (len(f) < 2 || !isInt(f[1])) {
			name = f[0]
			continue
		}
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		res := Result{Name: trimProcs(f[0]), Iters: n, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			res.Metrics[f[i+1]] = v
			res.Units = append(res.Units, f[i+1])
		}
		out = append(out, res)
	}
	return out
}

func isInt(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

func trimProcs(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

// Machine describes where a run happened.
type Machine struct {
	CPU, Go, Commit, Date string
	Cores                 int
	MemGiB                float64
}

// ThisMachine reads the hardware, Go version and commit.
func ThisMachine() Machine {
	m := Machine{Go: runtime.Version(), Cores: runtime.NumCPU(), Date: time.Now().UTC().Format(time.RFC3339)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"), "%g", &kb)
		m.MemGiB = kb / (1 << 20)
	}
	if out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, _ := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); len(st) > 0 {
			m.Commit += "-dirty"
		}
	}
	return m
}

// Markdown renders one suite's results as a table: every custom metric
// first, then ns/op, B/op and allocs/op.
func Markdown(w io.Writer, s Suite, results []Result) {
	fmt.Fprintf(w, "## %s\n\n`go test -run '^$' -bench '%s' ./%s`", s.Title, s.Pattern, s.Package)
	if s.Benchtime != "" {
		fmt.Fprintf(w, " with `-benchtime %s`", s.Benchtime)
	}
	if len(s.Env) > 0 {
		fmt.Fprintf(w, " and `%s`", strings.Join(s.Env, " "))
	}
	fmt.Fprint(w, "\n\n")
	seen := map[string]bool{}
	var units []string
	for _, r := range results {
		for _, u := range r.Units {
			if !seen[u] {
				seen[u] = true
				units = append(units, u)
			}
		}
	}
	rank := func(u string) int {
		switch u {
		case "ns/op":
			return 1
		case "B/op":
			return 2
		case "allocs/op":
			return 3
		}
		return 0
	}
	sort.SliceStable(units, func(i, j int) bool { return rank(units[i]) < rank(units[j]) })
	fmt.Fprintf(w, "| benchmark | %s |\n|---|%s\n", strings.Join(units, " | "), strings.Repeat("---:|", len(units)))
	for _, r := range results {
		cells := make([]string, len(units))
		for i, u := range units {
			if v, ok := r.Metrics[u]; ok {
				cells[i] = formatValue(v)
			}
		}
		fmt.Fprintf(w, "| %s | %s |\n", strings.TrimPrefix(r.Name, "Benchmark"), strings.Join(cells, " | "))
	}
	if s.Notes != "" {
		fmt.Fprintf(w, "\n%s\n", s.Notes)
	}
	fmt.Fprintln(w)
}

func formatValue(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// CompareLogs writes the embedded file log and JetStream append and read
// figures of one run side by side, with their ratio.
func CompareLogs(w io.Writer, file, nats []Result) {
	byName := func(rs []Result) map[string]float64 {
		m := map[string]float64{}
		for _, r := range rs {
			m[strings.TrimPrefix(r.Name, "Benchmark")] = r.Metrics["events/s"]
		}
		return m
	}
	f, n := byName(file), byName(nats)
	fmt.Fprintf(w, "## Embedded log beside JetStream (same run, events/s)\n\n")
	fmt.Fprintf(w, "| workload | file log (fdatasync per group) | JetStream default (lazy fsync) | JetStream SyncAlways | file / lazy | file / SyncAlways |\n|---|---:|---:|---:|---:|---:|\n")
	for _, batch := range []int{1, 100, 1000} {
		for _, app := range []int{1, 64} {
			key := fmt.Sprintf("batch=%d/appenders=%d", batch, app)
			fv := f["Append/"+key]
			lv := n["Append/sync=lazy/"+key]
			av := n["Append/sync=always/"+key]
			fmt.Fprintf(w, "| append %s | %s | %s | %s | %s | %s |\n", key, formatValue(fv), formatValue(lv), formatValue(av), ratio(fv, lv), ratio(fv, av))
		}
	}
	fmt.Fprintf(w, "| read max=1000 | %s | %s | | %s | |\n\n", formatValue(f["Read/max=1000"]), formatValue(n["Read/max=1000"]), ratio(f["Read/max=1000"], n["Read/max=1000"]))
	if d := f["DiskSync"]; d > 0 {
		a := f["Append/batch=1000/appenders=1"]
		fmt.Fprintf(w, "The disk alone (one write of a 1000-event batch plus fdatasync, DiskSync) allows %s events/s "+
			"to one appender that waits for each batch; the log's batch=1000/appenders=1 reaches %s of that in this run.\n\n",
			formatValue(d), ratio(a, d))
	}
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return ""
	}
	return fmt.Sprintf("%.1f×", a/b)
}
