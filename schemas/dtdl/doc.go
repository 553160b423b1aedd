// Package dtdl parses, resolves and validates models written in the Digital
// Twins Definition Language (DTDL), versions 2 and 3, and validates twin
// property values against the resolved models.
//
// The package is pure: parsing, resolution and validation do no I/O and start
// no goroutines, with the single exception of [ValidateFiles], the offline
// entry point used by the command line, which reads files.
//
// Documents are JSON-LD texts whose @context names the DTDL version
// (dtmi:dtdl:context;2 or dtmi:dtdl:context;3). [Resolve] turns a batch of
// documents, together with already-known interfaces, into resolved
// [Interface] values: each carries the flattened view of its contents,
// inherited ones included, with the DTMI of the interface that declared them.
// Problems are reported as [Diagnostic] values whose Code is named like the
// ValidationID of the reference DTDL parser (invalidId, duplicateDefinition,
// recursiveStructureWide, ...), wrapped in a *[ValidationError].
//
// A [Registry] holds a consistent set of resolved interfaces. It is
// immutable: Add, Remove and Decommission return a new Registry and leave the
// receiver untouched, so the engine can keep old versions for time travel.
// Lookups and IsOfModel checks do not allocate.
//
// Twin writes are checked with [Interface.ValidateProperty],
// [Interface.ValidateInstance] and [Schema.Validate] on values decoded by
// encoding/json with UseNumber.
package dtdl
