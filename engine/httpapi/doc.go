// Package httpapi serves twinlog over HTTP: the Azure Digital Twins data-plane
// API (models, twins, relationships, components, telemetry, query), plus
// twinlog's own endpoints (health, readiness).
//
// It is a thin layer: it authenticates the caller, decodes the request, calls
// the domain service, and encodes the result or the error in ADT's shapes.
// Errors are *engine.Error values mapped in one table (errorStatus) to an HTTP
// status; the body is ADT's {"error":{"code","message"}} and the code is also
// sent in the x-ms-error-code header, as ADT does.
//
// Every api-version ADT has published from 2020-10-31 on is accepted,
// including 2022-05-31, which the Azure JavaScript SDK sends.
package httpapi
