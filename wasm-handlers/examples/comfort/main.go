// Command comfort is an example handler: it keeps a room's temperature,
// humidity, co2 and noise properties from its sensors' telemetry and
// computes the room's comfort score (0..100) from them.
//
// Trigger it on telemetry of Sensor twins (each with a "kind" property and
// an isLocatedIn relationship to its room) whose body is {"reading": v}, or
// on telemetry sent to a room directly with any of the four readings.
package main

import (
	"errors"
	"math"
	"strconv"

	"github.com/twinlog/twinlog/wasm-handlers/handler"
)

var kinds = []string{"temperature", "humidity", "co2", "noise"}

func init() { handler.Handle(handle) }

func handle(e *handler.Event) error {
	body, ok := handler.NumberMembers(e.Payload)
	if !ok {
		return nil // not a JSON object: not ours
	}
	room, readings := e.Twin, map[string]float64{}
	if r, ok := body["reading"]; ok {
		kb, err := handler.Property(e.Twin, "kind")
		if err != nil {
			return nil // a sensor without a kind
		}
		kind, err := strconv.Unquote(string(kb))
		if err != nil {
			return nil
		}
		rels, err := handler.Outgoing(e.Twin, "isLocatedIn")
		if err != nil || len(rels) == 0 {
			return nil // an unplaced sensor
		}
		room, readings[kind] = rels[0].Peer, r
	} else {
		for _, k := range kinds {
			if v, ok := body[k]; ok {
				readings[k] = v
			}
		}
	}
	if len(readings) == 0 {
		return nil
	}
	ops := make([]handler.Op, 0, len(readings)+1)
	for _, k := range kinds {
		if v, ok := readings[k]; ok {
			ops = append(ops, handler.Op{Op: "add", Path: "/" + k, Value: v})
		}
	}
	cur := func(k string, def float64) float64 {
		if v, ok := readings[k]; ok {
			return v
		}
		v, err := handler.PropertyFloat(room, k)
		if errors.Is(err, handler.ErrNotFound) || err != nil {
			return def
		}
		return v
	}
	c := Comfort(cur("temperature", 22), cur("humidity", 45), cur("co2", 600), cur("noise", 40))
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
