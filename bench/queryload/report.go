package queryload

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// targets are the figures for the full standard graph.
var targets = map[string]string{
	"lookup":         "p99 < 20 µs",
	"rooms-above-75": "< 50 ms",
	"join":           "p99 < 50 µs",
	"match":          "< 2 ms",
}

// Markdown writes a run's results as a RESULTS.md section, with the targets
// beside the figures and PostgreSQL as a ratio.
func Markdown(w io.Writer, cfg Config, r *Result) {
	cfg.defaults()
	fmt.Fprintf(w, "## Query language workload (bench/queryload)\n\n")
	fmt.Fprintf(w, "Standard graph: %d twins, %d relationships. In process: each query kind through graphquery's Runner "+
		"(the POST /query path minus HTTP) on a twin graph built from the twin service's events (bench/graphload, %.1f s), "+
		"one query at a time for %s. PostgreSQL 15 baseline, same run, same machine: twins as JSONB rows (primary key on id, "+
		"index on model), relationships as a table (primary key (src, id), index on tgt), a recursive CTE for MATCH, "+
		"queried from Go with pgx, one query at a time. The room temperatures of the standard graph are 18–26, so "+
		"`T.temperature > 75` (the issue's threshold, °F) matches no room and measures the scan; `> 25` matches about one "+
		"room in eight.\n\n", r.Twins, r.Relationships, r.BuildSeconds, cfg.Phase)
	fmt.Fprintf(w, "| query | twinlog avg | twinlog p99 | PostgreSQL avg | PostgreSQL p99 | PostgreSQL / twinlog (avg) | target |\n|---|---:|---:|---:|---:|---:|---|\n")
	for _, q := range Queries(cfg.Graph) {
		t, p := r.InProcess[q.Name], r.PG[q.Name]
		pgAvg, pgP99, ratio := "", "", ""
		if p.Runs > 0 {
			pgAvg, pgP99 = us(p.AvgUs), us(p.P99Us)
			if t.AvgUs > 0 {
				ratio = fmt.Sprintf("%.1f×", p.AvgUs/t.AvgUs)
			}
		}
		fmt.Fprintf(w, "| %s `%s` | %s | %s | %s | %s | %s | %s |\n", q.Name, q.Text(0), us(t.AvgUs), us(t.P99Us), pgAvg, pgP99, ratio, targets[q.Name])
	}
	if r.NoiseP50Us > 0 {
		fmt.Fprintf(w, "\nThe host's own tail, measured just before in the same process: a fixed computation of about %.0f µs "+
			"(no memory traffic, no allocation; bench.Noise), repeated for %s, took %s at the median and %s at p99. "+
			"Every p99 above includes what the host adds.\n", r.NoiseUs, cfg.Phase, us(r.NoiseP50Us), us(r.NoiseP99Us))
	}
	fmt.Fprintf(w, "\nMixed workload: %d queries from %d connections, twinlog over POST /query (HTTP/1.1, loopback, load generator in "+
		"the same process) against a node whose log holds the graph's events (appended and applied in %.1f s, its history checkpoint then done, background snapshots off); PostgreSQL "+
		"through a pool of %d connections. Mix %s; point mix %s.\n\n",
		cfg.Queries, cfg.Conns, r.NodeLoadSeconds, cfg.Conns, mixString(cfg.Mix), mixString(PointMix))
	fmt.Fprintf(w, "| workload | twinlog | PostgreSQL | twinlog / PostgreSQL | target |\n|---|---:|---:|---:|---|\n")
	for _, m := range []struct {
		name   string
		t, p   Mixed
		target string
	}{{"mixed", r.HTTP, r.PGMixed, ">= 20,000 queries/s"}, {"point mix", r.HTTPPoint, r.PGPoint, ""}} {
		pg, ratio := "", ""
		if m.p.Queries > 0 {
			pg = fmt.Sprintf("%.0f/s (p99 %s)", m.p.PerSec, us(m.p.P99Us))
			ratio = fmt.Sprintf("%.2f×", m.t.PerSec/m.p.PerSec)
		}
		fmt.Fprintf(w, "| %s | %.0f/s (p99 %s, %s CPU per query, %d errors) | %s | %s | %s |\n", m.name, m.t.PerSec, us(m.t.P99Us), us(m.t.CPUUs), m.t.Errors, pg, ratio, m.target)
	}
	if r.PGError != "" {
		fmt.Fprintf(w, "\nPostgreSQL baseline not run: %s\n", r.PGError)
	}
	fmt.Fprintln(w)
}

func us(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.1f ms", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.2f ms", v/1000)
	}
	return fmt.Sprintf("%.1f µs", v)
}

func mixString(mix map[string]int) string {
	total := 0
	var names []string
	for n, w := range mix {
		total += w
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.0f%%", n, 100*float64(mix[n])/float64(total))
	}
	return strings.Join(parts, ", ")
}
