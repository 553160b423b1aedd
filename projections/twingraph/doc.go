// Package twingraph is the live twin graph: models, twins and relationships
// derived from the log, indexed in go-memdb.
//
// A Graph is an engine.Projection. The engine's applier goroutine feeds it
// batches in log order; each batch is one memdb write transaction, after
// which a new read view (memdb snapshot, model registry, position) is
// published atomically. Readers call Snapshot and see one consistent
// position; objects in the graph are immutable (every change inserts a new
// object), so a snapshot never changes under its reader. Application is
// deterministic: timestamps (lastUpdateTime, uploadTime) come from the
// events, and ETags from event positions (see ETag), so replaying a log into
// a fresh Graph yields identical twins, bodies and tags.
//
// # Streams and events
//
// Every payload is JSON, at SchemaVersion 1, except twin.patched, which the
// twin service writes in a compact binary form at PatchedSchemaVersion (2);
// Decode reads both. Writers are in engine/twins, but for telemetry.batch:
// many points in the binary form of AppendTelemetryBatchHeader, written by
// the ingestion path (processors/ingest).
//
//	stream           type                    payload              effect
//	models           model.uploaded          ModelsUploaded       adds a batch of DTDL interfaces atomically; uploadTime = event time
//	models           model.decommissioned    ModelRef             marks a model decommissioned (no new twins)
//	models           model.deleted           ModelRef             removes a model nothing references
//	twin/<id>        twin.created            TwinState            creates the twin; every property's lastUpdateTime = event time
//	twin/<id>        twin.replaced           TwinState            replaces the whole twin (PUT on an existing id)
//	twin/<id>        twin.patched            TwinPatched          the JSON Patch as applied plus its effect (set/unset/sourceTimes per section, model migration)
//	twin/<id>        twin.deleted            TwinRef              deletes a twin with no relationships
//	twin/<src>       relationship.created    RelationshipState    adds an outgoing relationship of src
//	twin/<src>       relationship.replaced   RelationshipState    replaces it (PUT on an existing id; the target may change)
//	twin/<src>       relationship.patched    RelationshipPatched  the JSON Patch as applied plus the resulting properties
//	twin/<src>       relationship.deleted    RelationshipRef      removes it
//	twin/<target>    relationship.linked     RelationshipRef      marker: a relationship to target was created
//	twin/<target>    relationship.unlinked   RelationshipRef      marker: a relationship to target was deleted or retargeted
//	telemetry/<id>   telemetry               Telemetry            records last-known telemetry per component and the message id (de-duplication)
//	ingest/<shard>   telemetry.batch         TelemetryPoint*      each point as its telemetry event would, but for telemetry/<id>'s version
//
// A stream's version is the position of its last event; writers expect it.
// Relationship writes live on the source twin's stream, so they serialize
// with the source's own writes; creating one also appends a marker to the
// target's stream and expects the target's version, so a concurrent delete
// of the target conflicts instead of leaving the relationship dangling.
// A twin's Version therefore moves with relationship events, while its ETag
// changes only when the twin itself does.
//
// # Snapshots
//
// WriteSnapshot serializes a Snapshot (models, twins with their outgoing
// relationships, deleted twins' stream versions, telemetry de-duplication
// state, position) in a compact streaming binary format with a CRC-32C
// trailer (see snapfile.go); LoadSnapshot rebuilds a Graph from it, which
// then applies the log from the next position and ends in the same state as
// a replay from scratch. It reads the file into memory and, for a large
// graph, skims the twins section once (parsing without building) to cut it
// into blocks that several goroutines decode while it reads the sections
// after it (see snapload.go). LoadSnapshotView does the same for a graph
// kept briefly (a historical read view), with twins and their arrays in
// shared blocks, and LoadSnapshotViewAt can fold the log after the snapshot
// into the load when it only patches root properties (snapfold.go). A
// Snapshotter writes snapshot files in the
// background (every N events or M seconds, atomically, keeping the newest
// K) from published Snapshots, so the applier never waits; LoadNewest
// restores from the newest valid one, skipping damaged ones.
//
// # Memory
//
// memdb costs about 420 bytes per index entry (measured), so only models
// and small bookkeeping records are memdb objects. Twins live in two
// persistent B+trees (btree.go) the writer updates per batch (id -> twin, and
// model+id membership, touched only when a twin's model changes), so a
// patch copies one tree path instead of rewriting two memdb indexes. Relationships live in their
// source's and target's adjacency lists (see schema). Properties are
// canonical JSON strings in a sorted slice; model ids, property and
// relationship names and source/target ids are shared strings. Within one
// applied batch, a twin already copied is changed in place (a Twin records
// the write transaction that made it, as the tree nodes do), its properties
// too when it owns their array, so bulk loads do not copy it once per
// relationship nor a replay once per patch. The JSON payloads of twin and
// relationship states and of telemetry, as NewEvent writes them, are read
// without encoding/json (statefast.go); anything else is decoded by Decode.
// BenchmarkGraphLoad measures about
// 530 bytes of heap per twin-or-relationship on the standard graph shape:
// about 1.6 GB live for 1,011,000 twins and 2,009,000 relationships.
//
// # Following relationships
//
// A Relationship carries a hint, a value of its target twin, so that a
// query stepping from a twin to its relationships' targets
// (TwinSeeker.Target) need not look each one up by id. The writer points
// the hints of a twin's incoming relationships at each new value it makes
// of the twin (when there are at most 64 of them), and a reader that had
// to look a target up fills a missing hint. A hint is trusted only when
// its value is current in the reader's snapshot: every value records the
// transaction that made it and, once replaced or deleted, the one that did
// (set before that transaction's snapshot is published), and the graph
// that made it, since a fork shares its parent's values and relationships
// and only the graph that made a value keeps its marks.
package twingraph
