// Command benchreport runs twinlog's benchmark suites and writes the results,
// with the machine, Go version and commit, to a Markdown file.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/twinlog/twinlog/bench"
	"github.com/twinlog/twinlog/bench/queryload"
	"github.com/twinlog/twinlog/bench/stdgraph"
	"github.com/twinlog/twinlog/bench/twinload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	out := fs.String("out", "bench/RESULTS.md", "file to write")
	only := fs.String("only", "", "run only suites whose package contains this")
	count := fs.Int("count", 1, "go test -count")
	buildings := fs.Int("buildings", 1000, "standard graph size for the twin workload (1000 = 1,011,000 twins)")
	phase := fs.Duration("phase", 10*time.Second, "length of each measured phase of the twin workload")
	pg := fs.String("postgres", envOr("TWINLOG_BENCH_PG", "postgres://postgres@127.0.0.1:5432/test"), "PostgreSQL baseline (empty to skip)")
	skipGo := fs.Bool("skip-go", false, "skip the Go benchmark suites")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the twin workload to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m := bench.ThisMachine()
	var doc bytes.Buffer
	fmt.Fprintf(&doc, "# Benchmark results\n\nWritten by `make bench` (bench/cmd/benchreport). Figures from one run, side by side; "+
		"the machines are shared and noisy, so compare ratios within a run rather than single timings across runs.\n\n")
	fmt.Fprintf(&doc, "- CPU: %s (%d cores)\n- Memory: %.1f GiB\n- Go: %s\n- Commit: %s\n- Date: %s\n\n", m.CPU, m.Cores, m.MemGiB, m.Go, m.Commit, m.Date)
	results := map[string][]bench.Result{}
	for _, s := range bench.Suites {
		if *skipGo {
			break
		}
		if *only != "" && !strings.Contains(s.Package, *only) {
			continue
		}
		fmt.Fprintf(stdout, "== %s (./%s)\n", s.Title, s.Package)
		cmdArgs := []string{"test", "-run", "^$", "-bench", s.Pattern, "-benchmem", "-count", fmt.Sprint(*count), "-timeout", "60m"}
		if s.Benchtime != "" {
			cmdArgs = append(cmdArgs, "-benchtime", s.Benchtime)
		}
		cmdArgs = append(cmdArgs, "./"+s.Package)
		cmd := exec.CommandContext(ctx, "go", cmdArgs...)
		cmd.Env = append(os.Environ(), s.Env...)
		var buf bytes.Buffer
		cmd.Stdout = io.MultiWriter(&buf, stdout)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(&doc, "## %s\n\nrun failed: %v\n\n", s.Title, err)
			continue
		}
		rs := bench.ParseBench(&buf)
		results[s.Package] = rs
		bench.Markdown(&doc, s, rs)
	}
	if f, n := results["engine/eventlog/filelog"], results["engine/eventlog/natslog"]; f != nil && n != nil {
		bench.CompareLogs(&doc, f, n)
	}
	if *only == "" || strings.Contains("twinload", *only) {
		fmt.Fprintf(stdout, "== twin workload (bench/twinload), %d buildings\n", *buildings)
		cfg := twinload.Config{
			Graph:    stdgraph.Config{Buildings: *buildings},
			Duration: *phase,
			Postgres: *pg,
			Progress: stdout,
		}
		if *cpuprofile != "" {
			f, err := os.Create(*cpuprofile)
			if err != nil {
				return err
			}
			pprof.StartCPUProfile(f)
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
		res, err := twinload.Run(ctx, cfg)
		if err != nil {
			fmt.Fprintf(&doc, "## Twin graph and REST API workload\n\nrun failed: %v\n\n", err)
		} else {
			twinload.Markdown(&doc, cfg, res)
		}
	}
	if *only == "" || strings.Contains("queryload", *only) {
		fmt.Fprintf(stdout, "== query workload (bench/queryload), %d buildings\n", *buildings)
		cfg := queryload.Config{Graph: stdgraph.Config{Buildings: *buildings}, Postgres: *pg, Progress: stdout}
		if res, err := queryload.Run(ctx, cfg); err != nil {
			fmt.Fprintf(&doc, "## Query language workload\n\nrun failed: %v\n\n", err)
		} else {
			queryload.Markdown(&doc, cfg, res)
		}
	}
	// Analyses written by hand (what bounds a missed target, runs too long
	// for make bench) follow the figures, each with its command and date.
	if notes, err := os.ReadFile("bench/NOTES.md"); err == nil {
		doc.WriteString("\n")
		doc.Write(notes)
	}
	if err := os.WriteFile(*out, doc.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
