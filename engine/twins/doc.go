// Package twins is the digital-twin domain service: the ADT data-plane
// operations on models, twins, components, relationships and telemetry.
//
// Writes are engine commands. Each Decide takes a twingraph.Snapshot,
// validates the request against the resolved DTDL model and the current
// state (If-Match / If-None-Match, existence, relationship targets, limits)
// and returns the events to append with the stream versions it relied on;
// on a concurrent write the engine re-decides against newer state. A write
// returns after its events are durable and applied, so reads (served from
// the graph's latest snapshot) see it.
//
// Every error is an *engine.Error whose Code is the ADT error code:
// DigitalTwinNotFound, ModelNotFound, ComponentNotFound,
// RelationshipNotFound, TargetTwinNotFound (404); ValidationFailed,
// JsonPatchInvalid, InvalidRelationship, RelationshipsNotDeleted,
// OperationNotAllowed, ModelDecommissioned, DTDLParserError,
// ModelVersionNotSupported, InvalidArgument, LimitExceeded (400);
// ModelAlreadyExists, ModelReferencesNotDeleted (409); PreconditionFailed
// (412); PayloadTooLarge (413).
//
// JSON Patch (RFC 6902: add, remove, replace, move, copy, test) is parsed
// by ParsePatch and applied by Apply; the twin service applies it to a
// document made of the touched top-level members (components include their
// $metadata) plus, when a path starts with /$metadata, the twin's
// $metadata with $model and each property's sourceTime.
package twins
