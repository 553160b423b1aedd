// Command hostile misbehaves on purpose, as its config's "mode" says, so
// tests can check that the host contains it: loop (never returns), bomb
// (allocates without bound), panic, exit (the module exits: a trap), huge
// (outputs without bound), missing (patches a twin that does not exist),
// cycle (patches its trigger's neighbours' "property" to the trigger's value
// plus one, following "relationship" in direction "follow").
package main

import (
	"encoding/json"
	"os"
	"strings"

	"github.com/twinlog/twinlog/wasm-handlers/handler"
)

var cfg struct {
	Mode, Follow, Relationship, Property string
}

var sink [][]byte

func init() {
	json.Unmarshal(handler.Config(), &cfg)
	handler.Handle(handle)
}

func handle(e *handler.Event) error {
	switch cfg.Mode {
	case "loop":
		n := 0
		for {
			n++
		}
	case "bomb":
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	case "panic":
		var m map[string]int
		m["x"] = 1
	case "exit":
		os.Exit(3)
	case "huge":
		big := strings.Repeat("x", 3000)
		for {
			if err := e.Patch(e.Twin, handler.Replace("name", big)); err != nil {
				return err
			}
		}
	case "missing":
		return e.Patch("no-such-twin", handler.Replace("name", "x"))
	case "cycle":
		v, err := handler.PropertyFloat(e.Twin, cfg.Property)
		if err != nil {
			return nil
		}
		var rels []handler.Relationship
		if cfg.Follow == "incoming" {
			rels, err = handler.Incoming(e.Twin, cfg.Relationship)
		} else {
			rels, err = handler.Outgoing(e.Twin, cfg.Relationship)
		}
		if err != nil {
			return err
		}
		for _, r := range rels {
			if err := e.Patch(r.Peer, handler.Replace(cfg.Property, v+1)); err != nil {
				return err
			}
		}
	}
	return nil
}

func main() {}
