// Package natstest runs real NATS servers with JetStream inside a test
// process: one server, or a cluster of several on loopback. The natslog tests,
// its benchmarks and end-to-end tests of the engine use it, so none of them
// needs a nats-server binary installed.
//
// Every server listens on a random loopback port, keeps its JetStream store
// in a temporary directory of the test, and is shut down when the test ends.
package natstest
