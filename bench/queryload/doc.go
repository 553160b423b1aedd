// Package queryload measures the query engine on the standard benchmark
// graph: Go benchmarks of the four headline queries ($dtId lookup, the room
// temperature scan, a one-hop JOIN, a three-hop MATCH) through graphquery on
// a twin graph built from events (bench/graphload), the same queries on
// PostgreSQL 15 (twins as JSONB rows, relationships as a table, a
// recursive CTE for MATCH) in the same run, and a mixed workload over
// POST /query against a node.
package queryload
