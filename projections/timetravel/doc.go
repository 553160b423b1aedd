// Package timetravel reads the twin graph as it was at any past point of
// the log: a log position, or a time (every event the log accepted at or
// before it).
//
// The log is the system of record and the twin graph a pure function of
// it, so the graph as of position p is the graph replayed from the start
// to p. A Traveler bounds that work with checkpoints: snapshot files
// (twingraph's format) in one or more directories, the newest two kept by
// the live graph's Snapshotter and, for history, a Checkpointer's directory
// holding a snapshot every N events. AsOf loads the newest checkpoint at or
// before p (a read view, decoded on several goroutines) while another
// goroutine already reads the log after it up to p, replays that log onto
// it in batches, and caches the result: an LRU of read views by position,
// bounded in entries and estimated bytes. A cached graph whose position is
// the tip of its lineage is also a starting point, so nearby positions
// after it cost only the events in between. When the log up to p holds
// only patches of twins' root properties and telemetry, it is folded into
// the checkpoint's load instead (twingraph.LoadSnapshotViewAt): the
// patches change the decoded twins before the graph is published, with no
// replay.
//
// Historical read views are ordinary *twingraph.Snapshot values: the query
// language runs on them through graphquery (AS OF, see Traveler.Query),
// they hold the model registry as of their position (the models in force
// then), and since the log is immutable a view at a position is the same
// whenever it is rebuilt, which is what lets a paged AS OF query continue
// after its view was evicted.
//
// History lists a twin's changes from its stream: each event with time,
// actor, causing event and, for patches, the JSON Patch as applied.
package timetravel
