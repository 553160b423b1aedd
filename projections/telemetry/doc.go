// Package telemetry is the columnar telemetry history: every telemetry
// point in the log, kept as Apache Arrow record batches per model and time
// partition, queried by twin set and time range with downsampling and
// aggregates, and exported as Parquet or an Arrow IPC stream.
//
// A Store is a projection (Apply, in log order, deterministic: point times
// are the points' source times when given, else the event times). It reads
// both telemetry layouts of processors/ingest (one "telemetry" event per
// point, twingraph.Telemetry, and "telemetry.batch" events) and follows
// twin events to know each twin's model. Each point becomes one row of its
// model's partition for the point's time window: twin (dictionary-encoded
// string), time (ns timestamp) and one float64 column per numeric
// telemetry field (booleans as 0/1; a component's fields are named
// "component.field"; strings and nested values are not kept). Rows gather
// in an open chunk and are sealed into an immutable Arrow record every
// ChunkRows rows, or when a query or an export needs them.
//
// Arrow (arrow-go, the maintained Go module of Apache Arrow) is the format
// analytics tools read without conversion, and its record batches with
// pqarrow write Parquet directly. It has no group-by kernels, so
// aggregation is a loop over the columns: a per-record mask over the twin
// dictionary, then one pass per field.
//
// The store is memory-only: it is rebuilt from the log at start, and
// Retention bounds it by dropping whole partitions older than the newest
// point minus the retention. A node does not feed it through the engine,
// whose projections start at the twin graph snapshot's position: a
// Follower tails the log from the store's own position (1 for a new store)
// in its own goroutine, reports readiness once it has reached the head the
// log had at start, and offers Sync for reads that must see every earlier
// write. engine/httpapi serves it at GET /telemetry and
// GET /telemetry/export; `twinlog telemetry` and `twinlog export` are its
// command-line clients.
package telemetry
