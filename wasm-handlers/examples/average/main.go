// Command average is an example handler that propagates state up a
// hierarchy: when a twin's property (default "comfort") changes, every twin
// that contains it (incoming relationships named "contains" by default) gets
// the average of that property over all the twins it contains, to two
// decimals. Floors average their rooms; the floors' changes then trigger
// the handler again and buildings average their floors.
//
// Config: {"property": "comfort", "relationship": "contains"}.
package main

import (
	"encoding/json"
	"errors"

	"github.com/twinlog/twinlog/wasm-handlers/handler"
)

type config struct {
	Property     string `json:"property"`
	Relationship string `json:"relationship"`
}

var cfg = config{Property: "comfort", Relationship: "contains"}

func init() {
	json.Unmarshal(handler.Config(), &cfg)
	handler.HandleBatch(handle)
}

// handle recomputes each parent once per batch, caused by the last event
// that touched it.
func handle(batch []handler.Event) error {
	var order []string
	cause := map[string]*handler.Event{}
	for i := range batch {
		e := &batch[i]
		parents, err := handler.Incoming(e.Twin, cfg.Relationship)
		if err != nil && !errors.Is(err, handler.ErrNotFound) {
			return err
		}
		for _, p := range parents {
			if p.Name != cfg.Relationship {
				continue
			}
			if _, ok := cause[p.Peer]; !ok {
				order = append(order, p.Peer)
			}
			cause[p.Peer] = e
		}
	}
	for _, parent := range order {
		children, err := handler.Outgoing(parent, cfg.Relationship)
		if err != nil {
			continue // the parent is gone
		}
		sum, n := 0.0, 0
		for _, c := range children {
			v, err := handler.PropertyFloat(c.Peer, cfg.Property)
			if err != nil {
				continue
			}
			sum, n = sum+v, n+1
		}
		if n == 0 {
			continue
		}
		if err := cause[parent].Patch(parent, handler.Replace(cfg.Property, handler.Round(sum/float64(n), 2))); err != nil {
			return err
		}
	}
	return nil
}

func main() {}
