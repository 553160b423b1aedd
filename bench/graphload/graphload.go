// Package graphload builds the standard benchmark graph (bench/stdgraph)
// without the REST path: it generates the events the twin service would
// append to create it — the models upload, one twin.created per twin, and per
// relationship a relationship.created on the source's stream with its
// relationship.linked marker on the target's — and applies them to a
// twingraph.Graph in large batches, or hands them to any other appender (a
// node's log). Positions and times are assigned deterministically, so two
// builds of one Config are the same graph, byte for byte.
//
// It is for benchmarks that need a loaded graph and do not measure loading
// it: building the full graph this way takes seconds, not the minutes of
// a million PUTs.
package graphload

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/twinlog/twinlog/bench/stdgraph"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/projections/twingraph"
)

// Actor is the actor of every generated event.
const Actor = "bench"

// DefaultBatch is the number of events per batch when Options.Batch is 0.
const DefaultBatch = 16384

// Epoch is the time of the first generated event; each next event is one
// microsecond later.
var Epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Options configure generation. The zero value builds the full standard
// graph in batches of DefaultBatch.
type Options struct {
	// Graph is the graph to generate. Default: the full standard graph.
	Graph stdgraph.Config
	// Batch is the number of events per batch. Default DefaultBatch.
	Batch int
	// First is the position of the first event. Default 1. Event i (from
	// 0) gets position First+i and time Epoch + (First+i) µs.
	First uint64
}

// Events returns how many events generation produces for cfg: one models
// upload, one per twin and two per relationship.
func Events(cfg stdgraph.Config) int {
	return 1 + cfg.Twins() + 2*cfg.Relationships()
}

// Generate calls emit with successive batches of the events that create the
// graph, in log order. emit owns the batch it is given: each call gets a
// fresh slice. Returning an error from emit stops generation.
func Generate(opts Options, emit func(batch []event.Event) error) error {
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	if opts.First == 0 {
		opts.First = 1
	}
	pos := opts.First
	batch := make([]event.Event, 0, opts.Batch)
	add := func(e event.Event) error {
		e.Position = pos
		e.Time = Epoch.UnixNano() + int64(pos)*int64(time.Microsecond)
		pos++
		batch = append(batch, e)
		if len(batch) == opts.Batch {
			if err := emit(batch); err != nil {
				return err
			}
			batch = make([]event.Event, 0, opts.Batch)
		}
		return nil
	}
	models, err := twingraph.NewEvent(twingraph.ModelsStream, twingraph.TypeModelUploaded, Actor, &twingraph.ModelsUploaded{Models: stdgraph.Models()})
	if err != nil {
		return err
	}
	if err := add(models); err != nil {
		return err
	}
	err = stdgraph.Generate(opts.Graph, func(t stdgraph.Twin) error {
		st := twingraph.TwinState{ID: t.ID, Model: t.Model}
		st.Properties = make(map[string]json.RawMessage, len(t.Properties))
		for k, v := range t.Properties {
			enc, err := twingraph.Canonical(v)
			if err != nil {
				return fmt.Errorf("twin %s property %s: %w", t.ID, k, err)
			}
			st.Properties[k] = enc
		}
		e, err := twingraph.NewEvent(twingraph.TwinStream(t.ID), twingraph.TypeTwinCreated, Actor, &st)
		if err != nil {
			return err
		}
		return add(e)
	}, func(r stdgraph.Relationship) error {
		e, err := twingraph.NewEvent(twingraph.TwinStream(r.Source), twingraph.TypeRelationshipCreated, Actor, &twingraph.RelationshipState{
			Source: r.Source, ID: r.ID, Name: r.Name, Target: r.Target, Properties: json.RawMessage("{}")})
		if err != nil {
			return err
		}
		if err := add(e); err != nil {
			return err
		}
		e, err = twingraph.NewEvent(twingraph.TwinStream(r.Target), twingraph.TypeRelationshipLinked, Actor, &twingraph.RelationshipRef{
			Source: r.Source, ID: r.ID, Name: r.Name, Target: r.Target})
		if err != nil {
			return err
		}
		return add(e)
	})
	if err != nil {
		return err
	}
	if len(batch) > 0 {
		return emit(batch)
	}
	return nil
}

// Load applies the graph's events to g, which must be empty (at position
// 0), one Apply per batch.
func Load(g *twingraph.Graph, opts Options) error {
	if p := g.Position(); p != 0 {
		return fmt.Errorf("graphload: graph is at position %d, not empty", p)
	}
	opts.First = 1
	return Generate(opts, func(batch []event.Event) error {
		if err := g.Apply(batch); err != nil {
			return fmt.Errorf("apply at %d: %w", batch[0].Position, err)
		}
		return nil
	})
}

// Build returns a new graph holding the standard graph cfg.
func Build(cfg stdgraph.Config) (*twingraph.Graph, error) {
	g := twingraph.New(twingraph.Options{})
	if err := Load(g, Options{Graph: cfg}); err != nil {
		return nil, err
	}
	return g, nil
}
