// Command comfort is an example handler: it keeps a room's temperature,
// humidity, co2 and noise properties from its sensors' telemetry and
// computes the room's comfort score (0..100) from them.
//
// Trigger it on telemetry of Sensor twins (each with a "kind" property and
// an isLocatedIn relationship to its room) whose body is {"reading": v}, or
// on telemetry sent to a room directly with any of the four readings.
package main

import (
	"math"
	"slices"

	"github.com/twinlog/twinlog/wasm-handlers/handler"
)

var kinds = [...]string{"temperature", "humidity", "co2", "noise"}

// paths are the JSON Patch paths of kinds, and defaults the values comfort
// assumes for a reading the room does not have.
var (
	paths    = [...]string{"/temperature", "/humidity", "/co2", "/noise"}
	defaults = [...]float64{22, 45, 600, 40}
)

func init() { handler.Handle(handle) }

// handle keeps its readings in arrays by kind, not maps: in a WebAssembly
// guest every map operation and allocation is costly.
func handle(e *handler.Event) error {
	body, ok := handler.NumberMembers(e.Payload)
	if !ok {
		return nil // not a JSON object: not ours
	}
	room := e.Twin
	var readings [len(kinds)]float64
	var have [len(kinds)]bool
	some := false // a reading to handle
	if r, ok := body["reading"]; ok {
		kind, err := handler.PropertyString(e.Twin, "kind")
		if err != nil {
			return nil // a sensor without a kind
		}
		rels, err := handler.Outgoing(e.Twin, "isLocatedIn")
		if err != nil || len(rels) == 0 {
			return nil // an unplaced sensor
		}
		// A sensor of another kind still has the room's comfort
		// recomputed.
		room, some = rels[0].Peer, true
		if k := slices.Index(kinds[:], kind); k >= 0 {
			readings[k], have[k] = r, true
		}
	} else {
		for k, name := range kinds {
			readings[k], have[k] = body[name]
			some = some || have[k]
		}
	}
	if !some {
		return nil
	}
	ops := make([]handler.Op, 0, len(kinds)+1)
	for k := range kinds {
		if have[k] {
			ops = append(ops, handler.Op{Op: "add", Path: paths[k], Value: readings[k]})
		}
	}
	for k, name := range kinds {
		if have[k] {
			continue
		}
		readings[k] = defaults[k]
		if v, err := handler.PropertyFloat(room, name); err == nil {
			readings[k] = v
		}
	}
	c := Comfort(readings[0], readings[1], readings[2], readings[3])
	ops = append(ops, handler.Op{Op: "add", Path: "/comfort", Value: c})
	return e.Patch(room, handler.PatchOf(ops...))
}

// Comfort scores a room from 100 (ideal: 22 °C, 45 % humidity, CO2 up to
// 600 ppm, noise up to 40 dB) down to 0, to one decimal.
func Comfort(temp, humidity, co2, noise float64) float64 {
	c := 100 - math.Abs(temp-22)*5 - math.Max(0, (co2-600)/10) - math.Abs(humidity-45)*0.5 - math.Max(0, noise-40)
	return handler.Round(math.Min(100, math.Max(0, c)), 1)
}

func main() {}
