// Package bench holds twinlog's whole-system workloads and the tooling that
// turns benchmark runs into bench/RESULTS.md.
//
// Micro-benchmarks live beside the code they measure as Go benchmarks; they
// report their headline figure with b.ReportMetric in a unit that names it
// (events/s, patches/s, ...). `make bench` runs the suites listed in Suites
// in one go, so figures that are compared (the embedded log against
// JetStream, twinlog against PostgreSQL) come from the same run on the same
// machine, and writes them with the hardware, Go version and commit.
package bench
