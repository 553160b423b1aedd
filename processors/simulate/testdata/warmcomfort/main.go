// Command warmcomfort is the comfort example handler changed to score 24 °C
// as the ideal temperature instead of 22 °C, for the simulation tests: a
// room's comfort from the temperature, humidity, co2 and noise sent to it
// as telemetry.
package main

import (
	"math"

	"github.com/twinlog/twinlog/wasm-handlers/handler"
)

var kinds = []string{"temperature", "humidity", "co2", "noise"}

func init() { handler.Handle(handle) }

func handle(e *handler.Event) error {
	body, ok := handler.NumberMembers(e.Payload)
	if !ok {
		return nil
	}
	ops := make([]handler.Op, 0, len(kinds)+1)
	for _, k := range kinds {
		if v, ok := body[k]; ok {
			ops = append(ops, handler.Op{Op: "add", Path: "/" + k, Value: v})
		}
	}
	if len(ops) == 0 {
		return nil
	}
	cur := func(k string, def float64) float64 {
		if v, ok := body[k]; ok {
			return v
		}
		if v, err := handler.PropertyFloat(e.Twin, k); err == nil {
			return v
		}
		return def
	}
	c := 100 - math.Abs(cur("temperature", 24)-24)*5 - math.Max(0, (cur("co2", 600)-600)/10) -
		math.Abs(cur("humidity", 45)-45)*0.5 - math.Max(0, cur("noise", 40)-40)
	ops = append(ops, handler.Op{Op: "add", Path: "/comfort", Value: handler.Round(math.Min(100, math.Max(0, c)), 1)})
	return e.Patch(e.Twin, handler.PatchOf(ops...))
}

func main() {}
