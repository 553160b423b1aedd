package twingraph

import (
	"bytes"
	"fmt"
)

// Rebuild returns a new graph holding what snap holds, laid out afresh: snap
// written in the snapshot format and loaded back, as a restart would. A
// graph built by many small writes has its twins and relationships spread
// over memory among the garbage of the writes that made them, in more
// objects than a loaded graph; the garbage collector pays for both on every
// cycle (on the standard graph of 1,011,000 twins, about four times the CPU).
// opts must be the graph's own. The result is at snap's position: apply the
// log after it, then Adopt it.
func Rebuild(snap *Snapshot, opts Options) (*Graph, error) {
	var buf bytes.Buffer
	if _, err := WriteSnapshot(&buf, snap); err != nil {
		return nil, fmt.Errorf("rebuild: %w", err)
	}
	c, err := LoadSnapshot(&buf, opts)
	if err != nil {
		return nil, fmt.Errorf("rebuild: %w", err)
	}
	return c, nil
}

// Adopt makes c's state g's and publishes it: c must be a Rebuild of one of
// g's snapshots with the log after it applied, up to g's own position, and
// must not be used afterwards. Only the goroutine that applies batches to g
// may call it, between two batches (engine.Engine.Exclusive). Snapshots
// taken before keep the state they had; readers see no change but where
// values live.
func (g *Graph) Adopt(c *Graph) error {
	if c == g {
		return nil
	}
	if c.pos != g.pos {
		return fmt.Errorf("twingraph: adopt a graph at %d into one at %d", c.pos, g.pos)
	}
	if c.twins.byID.Len() != g.twins.byID.Len() || c.modelsVersion != g.modelsVersion {
		return fmt.Errorf("twingraph: adopt a graph of %d twins (models version %d) into one of %d (%d)", c.twins.byID.Len(), c.modelsVersion, g.twins.byID.Len(), g.modelsVersion)
	}
	g.id, g.gen, g.db, g.twins, g.reg, g.names, g.telem = c.id, c.gen, c.db, c.twins, c.reg, c.names, c.telem
	g.publish()
	return nil
}
