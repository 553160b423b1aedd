package bench

// Suites are the benchmark groups `make bench` runs, in order. Each issue's
// headline figures come from here.
var Suites = []Suite{
	{
		Title:   "Event codec",
		Package: "engine/event",
		Pattern: "BenchmarkCodec",
	},
	{
		Title:     "Embedded file log (durable: one fdatasync per group commit, 100-byte payloads)",
		Package:   "engine/eventlog/filelog",
		Pattern:   "Benchmark",
		Benchtime: "2s",
		Notes: "Targets: >= 2,000,000 events/s at batch=1000; >= 100,000 appends/s with 64 concurrent " +
			"single-event appenders; read-back >= 5,000,000 events/s; open of a 10M-event log < 1 s.",
	},
	{
		Title:     "NATS JetStream log (in-process server, file storage), same workload",
		Package:   "engine/eventlog/natslog",
		Pattern:   "Benchmark",
		Benchtime: "2s",
		Notes: "Default mode flushes lazily (acknowledged messages can be lost on power failure of a " +
			"single node); SyncAlways fsyncs every message before acknowledging.",
	},
	{
		Title:   "DTDL parse, resolve and validate",
		Package: "schemas/dtdl",
		Pattern: "Benchmark",
		Notes: "Targets: building/ (768 interfaces) < 100 ms; all 1,952 pnp-models < 300 ms; lookups and " +
			"IsOfModel allocation-free.",
	},
	{
		Title:     "Twin service, in process (durable group commit where log=file)",
		Package:   "engine/twins",
		Pattern:   "Benchmark",
		Benchtime: "2s",
		Notes:     "Targets: >= 300,000 twin patches/s and >= 1,000,000 twin reads/s in process.",
	},
	{
		Title:     "WebAssembly handlers (processors/handlers)",
		Package:   "processors/handlers",
		Pattern:   "Benchmark",
		Benchtime: "3x",
		Notes: "Targets: >= 500,000 events/s through the whole path with the trivial handler (runtime=native is the " +
			"same logic in Go, same path; cpu-ns/event is the process's CPU per event); propagation p50 < 1 ms and " +
			"p99 < 10 ms at 10,000 telemetry events/s (followed: share of readings traced to the building); " +
			"deploy-to-live < 2 s cold and < 200 ms from the compilation cache.",
	},
	{
		Title:     "POST /ingest through a whole node (durable group commit, load generator in process)",
		Package:   "engine/node",
		Pattern:   "BenchmarkNodeIngest",
		Benchtime: "3000x",
		Notes: "Target: >= 1,000,000 telemetry points/s durable in batches of 1,000. layout=batch is the node's default " +
			"path (one telemetry.batch event per request), layout=events one telemetry event per point; applied-points/s " +
			"waits until the twin graph and the telemetry history have applied every point; points/s@2cores is the rate " +
			"the run's CPU time per point projects on two dedicated cores.",
	},
	{
		Title:     "MQTT ingestion through the embedded broker (QoS 1, durable before PUBACK)",
		Package:   "processors/mqtt",
		Pattern:   "BenchmarkBrokerQoS1",
		Benchtime: "200000x",
		Notes: "Target: >= 100,000 messages/s at QoS 1 through the embedded broker. client=raw is a minimal pipelining " +
			"publisher (so the broker is what is measured), client=paho the paho client; layout as for POST /ingest.",
	},
	{
		Title:     "Event routes to a local webhook (processors/routes)",
		Package:   "processors/routes",
		Pattern:   "Benchmark",
		Benchtime: "30000x",
		Notes: "Targets: delivery >= 50,000 events/s; telemetry in -> CloudEvent at the webhook p99 < 20 ms at 10,000 " +
			"events/s.",
	},
	{
		Title:     "Replay into a simulation branch (processors/simulate)",
		Package:   "processors/simulate",
		Pattern:   "BenchmarkReplay",
		Benchtime: "2x",
		Notes:     "1,000,000 recorded points replayed at full speed into a branch. Target: >= 1,000,000 events/s with a trivial handler.",
	},
	{
		Title:     "Twin graph projection",
		Package:   "projections/twingraph",
		Pattern:   "Benchmark",
		Benchtime: "1x",
	},
	{
		Title:     "HTTP layer in process (no sockets)",
		Package:   "engine/httpapi",
		Pattern:   "Benchmark",
		Benchtime: "2s",
	},
	{
		Title:     "Query language on the standard graph (1/10 size: 101,100 twins; TWINLOG_BENCH_FULL=1 for full size)",
		Package:   "bench/queryload",
		Pattern:   "BenchmarkQuery",
		Benchtime: "2s",
		Notes: "Each query through graphquery's Runner on a twin graph built from events (bench/graphload), one at a time. " +
			"cpu-us/op is the process's CPU time per query, steadier than wall time on a shared machine. Targets at full size: " +
			"lookup p99 < 20 µs; rooms-above-75 < 50 ms; join p99 < 50 µs; match < 2 ms. PostgreSQL and HTTP figures are in " +
			"the query language workload section.",
	},
	{
		Title:     "Time travel: AS OF reads and graph rebuilds (projections/timetravel)",
		Package:   "projections/timetravel",
		Pattern:   "Benchmark",
		Benchtime: "16x",
		Env:       []string{"TWINLOG_BENCH_LARGE=1"},
		Notes: "AsOf: a COUNT over every twin AS OF a point of a generated history (a checkpoint every 100,000 events); cold = a " +
			"fresh traveler per query (load the nearest checkpoint, replay the log after it), warm = a traveler that answered 32 " +
			"other random points, cached = the same points again. The 100,000-twin, 10 M-event history is the issue's size. " +
			"Replay: rebuilding the graph from position 0 of a 1 M-event log. Targets: AS OF at a random point of a 10 M-event " +
			"history of 100,000 twins p50 < 100 ms, p99 < 300 ms; rebuild >= 2,000,000 events/s.",
	},
	{
		Title:     "Telemetry history aggregation (projections/telemetry, Apache Arrow)",
		Package:   "projections/telemetry",
		Pattern:   "Benchmark",
		Benchtime: "3x",
		Notes: "RangeAggregate: hourly average of 1,000 twins at one point per minute, over 1 day (1.44 M rows) and 30 days " +
			"(43.2 M rows). Target: 30 days under 200 ms.",
	},
}
