// Package handlers runs user handlers compiled to WebAssembly over the event
// log: the processor side of wasm-handlers.
//
// Deployment is event-sourced. Deploying, disabling and deleting a handler
// append handler.deployed, handler.disabled and handler.deleted events to the
// "handlers" stream (a deployment carries the manifest and the module
// bytes), so the log alone says which version of which handler applies to
// which event, and a roll to a new version loses no event: events after the
// deployment's position go to the new version, earlier ones to the old.
//
// Each handler has a runner: a feeder goroutine tails the log from the
// handler's durable cursor, waits until the twin graph has applied each
// batch, selects the events its triggers match and publishes them, one
// watermill message per batch, to the handler's topic on an in-process
// GoChannel with BlockPublishUntilSubscriberAck, so batches of one handler
// are processed in log order and one at a time while handlers run
// independently; the feeder prepares the next batch (reads the log, looks
// up twins, encodes) while the one before is handled. The router handler calls the guest once per batch, then
// applies its outputs through the twin service (validated like any write).
// A telemetry.batch event reaches handlers as one telemetry event per point
// (see batch.go).
// watermill's Retry middleware retries failed batches; after the retries,
// the PoisonQueue middleware hands the batch to the isolation handler, which
// re-runs its events one by one and dead-letters (handler.deadlettered on
// stream "handlers/<name>/deadletters") only those that still fail.
//
// Idempotence: every output carries, in its actor, the triggering event's
// id and its sequence number among that event's outputs, the cascade's hop
// count and the path of (handler, twin) pairs it went through. Consecutive
// patches of one twin from one invocation, with the same hop count and
// path, are written as one patch (one append and one apply instead of one
// per output, which would each wait for the previous) whose actor names
// every output; if the service rejects it, they are written one by one. The cursor is
// checkpointed (handler.checkpoint on "handlers/<name>/cursor") after
// batches, lazily; on restart the runner scans the log after its cursor for
// outputs it already wrote and dead letters it already recorded, and skips
// them when it re-processes their causes. Nothing is counted twice.
//
// Cascades: an output is dropped, and reported, when its hop count would
// exceed Options.MaxHops or when its (handler, twin) pair is already on its
// causal path (a cycle).
package handlers
