// Package routes sends ADT-compatible event notifications out of twinlog:
// endpoints (webhook over HTTP(S), NATS subject, MQTT topic) and event
// routes ({endpointName, filter}) stored as events on the "routing" stream;
// log events converted to ADT's CloudEvents (Twin.Create/Update/Delete,
// Relationship.Create/Update/Delete, microsoft.iot.telemetry); ADT's route
// filter language; and delivery.
//
// Each route is a goroutine tailing the log from its own durable cursor
// (checkpointed as route.checkpoint events on "routes/<id>/cursor"), so a
// slow or failing endpoint delays only its own routes and never a write.
// Delivery is at least once, in log order per twin, in batches; a failing
// batch is retried with exponential backoff by watermill's Retry middleware
// for up to DeadLetterAfter (default 24 h), then watermill's PoisonQueue
// middleware hands it to the dead-letter store (route.deadlettered events
// on "routes/<id>/deadletter"), which can be listed and redriven.
package routes
