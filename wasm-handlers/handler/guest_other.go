//go:build !wasip1

package handler

// Outside WebAssembly there is no host: reads report ErrNotFound and writes
// do nothing, so handler packages still compile and vet on any platform.

func aliasString(b []byte) string { return string(b) }

// Twin returns the ADT JSON of a twin.
func Twin(id string) ([]byte, error) { return nil, ErrNotFound }

// Property returns the JSON value of a root property of a twin.
func Property(twin, name string) ([]byte, error) { return nil, ErrNotFound }

func property(twin, name string) ([]byte, error) { return nil, ErrNotFound }

// Model returns the model id of a twin.
func Model(twin string) (string, error) { return "", ErrNotFound }

func relationships(twin, name string, dir int32) ([]Relationship, error) { return nil, nil }

// Query runs a read-only ADT query over the snapshot.
func Query(text string) ([]byte, error) { return nil, ErrNotFound }

// Config returns the manifest's config object as JSON.
func Config() []byte { return []byte("{}") }

// Log writes a message to the host's log.
func Log(level int, format string, args ...any) {}

// Metric sets a gauge of the handler.
func Metric(name string, v float64) {}

// Patch queues a JSON Patch of twin caused by e.
func (e *Event) Patch(twin string, patch []byte) error { return nil }

// SendTelemetry queues a telemetry message from twin caused by e.
func (e *Event) SendTelemetry(twin string, body []byte) error { return nil }

func lastError() string { return "no host" }
