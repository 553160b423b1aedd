// Command trivial is the benchmark handler: for every event it makes one
// host call, reporting the event's payload size as a metric. It measures the
// cost of the path (event in, guest call, host call, result), not of
// handler logic.
package main

import "github.com/twinlog/twinlog/wasm-handlers/handler"

func init() {
	handler.Handle(func(e *handler.Event) error {
		handler.Metric("bytes", float64(len(e.Payload)))
		return nil
	})
}

func main() {}
