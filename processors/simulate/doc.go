// Package simulate runs what-if branches of the twin graph.
//
// A branch forks the graph as of a point of the log's history (a position
// or a time, through timetravel), then feeds it on its own: synthetic
// events supplied by the caller (JSON Patches and telemetry, through a
// twins.Service of the branch) and the telemetry recorded in a window of
// the main log, re-timed to follow the fork and replayed as fast as
// possible or at N× real time. Everything a branch writes goes to its own
// in-memory overlay log (an OffsetLog over a memlog, so positions continue
// after the fork's), applied by its own engine to its own graph; the main
// log and graph are only read.
package simulate
