package twinload

import (
	"fmt"
	"io"
)

// Markdown writes a run's results as a RESULTS.md section, with the targets
// beside the figures and PostgreSQL as a ratio.
func Markdown(w io.Writer, cfg Config, r *Result) {
	cfg.defaults()
	fmt.Fprintf(w, "## Twin graph and REST API workload (bench/twinload)\n\n")
	fmt.Fprintf(w, "Standard graph: %d twins, %d relationships, loaded through the twin service (durable group commit, %d workers). "+
		"After the load a snapshot is taken and the history checkpointer catches up (it adopts that snapshot), as in the "+
		"moments after a bulk import; then the HTTP phases: %d connections over loopback for %s each, load generator in the same process, "+
		"with the node's background work (snapshots every 1,000,000 events, history checkpoints) running as configured. "+
		"PostgreSQL 15 baseline: twins as JSONB rows (primary key on id), %d connections, synchronous_commit on, same machine, same run.\n\n",
		r.Twins, r.Relationships, cfg.LoadWorkers, cfg.Conns, cfg.Duration, cfg.Conns)
	fmt.Fprintf(w, "| figure | twinlog | PostgreSQL | twinlog / PostgreSQL | target |\n|---|---:|---:|---:|---|\n")
	ratio := func(a, b float64) string {
		if b == 0 {
			return ""
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	pgLoad := ""
	if r.PGLoadSeconds > 0 {
		pgLoad = fmt.Sprintf("%.1f s (COPY)", r.PGLoadSeconds)
	}
	fmt.Fprintf(w, "| load of the graph | %.1f s (%.0f objects/s) | %s | | |\n", r.LoadSeconds,
		float64(r.Twins+r.Relationships)/r.LoadSeconds, pgLoad)
	for _, op := range []struct{ name, target string }{{"GET", ">= 60,000/s"}, {"PATCH", ">= 30,000/s"}} {
		h, p := r.HTTP[op.name], r.PG[op.name]
		pgCell := ""
		if p.Ops > 0 {
			pgCell = fmt.Sprintf("%.0f/s (p99 %.0f µs)", p.OpsPerSec, p.P99us)
		}
		fmt.Fprintf(w, "| %s twin, %d conns | %.0f/s (p99 %.0f µs, %.1f µs CPU/request of which garbage collection %.1f (%d collections), %d errors) | %s | %s | %s |\n", op.name, cfg.Conns,
			h.OpsPerSec, h.P99us, h.CPUus, h.GCus, h.GCCycles, h.Errors, pgCell, ratio(h.OpsPerSec, p.OpsPerSec), op.target)
	}
	if h := r.HTTP["healthz"]; h.Ops > 0 {
		fmt.Fprintf(w, "| GET /healthz (empty handler: the HTTP stack's ceiling here) | %.0f/s (p99 %.0f µs, %.1f µs CPU/request) | | | |\n", h.OpsPerSec, h.P99us, h.CPUus)
	}
	for _, op := range []struct{ name, label string }{{"GET", "GET twin"}, {"PATCH", "PATCH twin"}, {"healthz", "GET /healthz"}} {
		ours, std := r.HTTP[op.name], r.HTTP[op.name+NetHTTPSuffix]
		if std.Ops == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s through net/http's server instead (same handler and run) | %.0f/s (p99 %.0f µs, %.1f µs CPU/request); the node's server does %s the requests/s at %s the CPU | | | |\n",
			op.label, std.OpsPerSec, std.P99us, std.CPUus, ratio(ours.OpsPerSec, std.OpsPerSec), ratio(ours.CPUus, std.CPUus))
	}
	for _, c := range []struct{ name, with, without string }{
		{"GET twin, API key with a model-scope grant vs admin token", "GET key, model grant", "GET admin"},
		{"GET twin of one building, API key with a subtree grant vs admin token", "GET key, subtree grant", "GET admin, building 0"},
		{"query by $dtId, API key with a model-scope grant vs admin token", "query key, model grant", "query admin"},
	} {
		with, without := r.HTTP[c.with], r.HTTP[c.without]
		if with.Ops == 0 || without.Ops == 0 {
			continue
		}
		cpu := ""
		if with.CPUus > 0 && without.CPUus > 0 {
			cpu = fmt.Sprintf("; CPU per request %.1f vs %.1f µs (%+.1f%%)", with.CPUus, without.CPUus, 100*(with.CPUus/without.CPUus-1))
		}
		fmt.Fprintf(w, "| %s, %d conns, sides interleaved every 100 ms | %.0f/s vs %.0f/s (p99 %.0f vs %.0f µs): authorization costs %.1f%%%s | | | < 5%% |\n", c.name, cfg.Conns,
			with.OpsPerSec, without.OpsPerSec, with.P99us, without.P99us, 100*(1-with.OpsPerSec/without.OpsPerSec), cpu)
	}
	fmt.Fprintf(w, "| RSS after load (incl. load generator) | %d MiB | | | < 2 GiB at full size |\n", r.RSSBytes>>20)
	fmt.Fprintf(w, "| peak RSS during the load (garbage not yet collected included) | %d MiB | | | |\n", r.PeakRSSBytes>>20)
	fmt.Fprintf(w, "| Go heap in use after load | %d MiB | | | |\n", r.HeapBytes>>20)
	if r.CompactSeconds > 0 {
		fmt.Fprintf(w, "| rebuild of the loaded graph (node.CompactGraph), before the phases | %.2f s; then heap %d MiB, RSS %d MiB | | | |\n",
			r.CompactSeconds, r.CompactHeapBytes>>20, r.CompactRSSBytes>>20)
		fmt.Fprintf(w, "| one garbage collection, loaded graph vs rebuilt | %.2f s of CPU (%.1f M objects) vs %.2f s (%.1f M) | | | |\n",
			r.GCBefore.CPUSeconds, float64(r.GCBefore.Objects)/1e6, r.GCAfter.CPUSeconds, float64(r.GCAfter.Objects)/1e6)
	}
	fmt.Fprintf(w, "| snapshot of the loaded graph | %.2f s (%d MiB) | | | |\n", r.SnapshotSeconds, r.SnapshotBytes>>20)
	fmt.Fprintf(w, "| restart (open + snapshot + %d events of log tail) | %.2f s | | | < 10 s at full size |\n", r.RestartTail, r.RestartSeconds)
	if r.PGError != "" {
		fmt.Fprintf(w, "\nPostgreSQL baseline not run: %s\n", r.PGError)
	}
	fmt.Fprintln(w)
}
