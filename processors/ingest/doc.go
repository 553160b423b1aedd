// Package ingest is the high-volume way telemetry enters twinlog: batches of
// points from devices and gateways (HTTP POST /ingest, MQTT), validated
// against each twin's model and appended to the log in large batches.
//
// A request (or an MQTT flush) becomes one Append, so concurrent requests
// share the log's group commit; it is acknowledged only once that Append is
// durable. Memory is bounded: request bodies reserve bytes from a fixed
// in-flight budget, and when the budget is spent or the consumers of the log
// fall too far behind, Ingest returns ErrBusy (HTTP 429 with Retry-After)
// instead of queueing.
//
// Two layouts of telemetry in the log are supported (Options.Layout):
//
//	LayoutBatch   (the default) one "telemetry.batch" event per request on
//	              stream "ingest/<shard>", with the compact binary payload
//	              of twingraph.AppendTelemetryBatchHeader: ~1/10 of the log
//	              records and bytes of the other layout. Every consumer of
//	              telemetry (the twin graph's last-known telemetry, WASM
//	              handlers, event routes, the telemetry history) reads it
//	              point by point, as it reads "telemetry" events.
//	LayoutEvents  one "telemetry" event per point on stream
//	              "telemetry/<twin>", with a twingraph.Telemetry payload, as
//	              the per-twin telemetry API writes.
package ingest
