// Command alert is an example handler that raises a flag when a twin's
// property crosses a threshold and lowers it when it falls back: with the
// default config, a room whose co2 goes above 1000 gets "alert": true.
//
// Config: {"property": "co2", "above": 1000, "flag": "alert"}.
package main

import (
	"encoding/json"
	"errors"

	"github.com/twinlog/twinlog/wasm-handlers/handler"
)

type config struct {
	Property string  `json:"property"`
	Above    float64 `json:"above"`
	Flag     string  `json:"flag"`
}

var cfg = config{Property: "co2", Above: 1000, Flag: "alert"}

func init() {
	json.Unmarshal(handler.Config(), &cfg)
	handler.Handle(handle)
}

func handle(e *handler.Event) error {
	v, err := handler.PropertyFloat(e.Twin, cfg.Property)
	if err != nil {
		return nil // unset or not a number
	}
	want := v > cfg.Above
	cur, err := handler.PropertyBool(e.Twin, cfg.Flag)
	if err == nil && cur == want {
		return nil
	}
	if err != nil && !errors.Is(err, handler.ErrNotFound) {
		return err
	}
	return e.Patch(e.Twin, handler.Replace(cfg.Flag, want))
}

func main() {}
