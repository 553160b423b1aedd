package handlers

import (
	"bytes"
	"context"
	"unsafe"

	"github.com/twinlog/twinlog/projections/graphquery"
	"github.com/twinlog/twinlog/projections/query"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/wasm-handlers/abi"
	"github.com/twinlog/twinlog/wasm-handlers/host"
)

// snapState is what a handler reads: one twin graph snapshot, through
// the handler's visibility (nil: every twin).
type snapState struct {
	snap    *twingraph.Snapshot
	visible func(id, model string) bool
}

var _ host.State = snapState{}

// twin returns twin id when it exists and the handler may read it: a twin
// it may not read does not exist for it.
func (s snapState) twin(id string) (*twingraph.Twin, bool) {
	t, ok := s.snap.Twin(id)
	if !ok || s.visible != nil && !s.visible(id, t.Model) {
		return nil, false
	}
	return t, true
}

// peer reports whether the twin at the other end of a relationship is
// readable.
func (s snapState) peer(id string) bool {
	if s.visible == nil {
		return true
	}
	_, ok := s.twin(id)
	return ok
}

func (s snapState) TwinJSON(id string) ([]byte, bool) {
	t, ok := s.twin(id)
	if !ok {
		return nil, false
	}
	return t.AppendJSON(nil), true
}

func (s snapState) Property(id, name string) ([]byte, bool) {
	t, ok := s.twin(id)
	if !ok {
		return nil, false
	}
	p, ok := t.Prop(name)
	if !ok {
		return nil, false
	}
	// The host only copies the value into the guest: no copy of our own.
	return unsafe.Slice(unsafe.StringData(p.Value), len(p.Value)), true
}

func (s snapState) Model(id string) (string, bool) {
	t, ok := s.twin(id)
	if !ok {
		return "", false
	}
	return t.Model, true
}

func (s snapState) Relationships(id, name string, incoming bool) ([]abi.Relationship, bool) {
	t, ok := s.twin(id)
	if !ok {
		return nil, false
	}
	var out []abi.Relationship
	if incoming {
		for _, r := range t.In {
			if (name == "" || r.Name == name) && s.peer(r.Source) {
				out = append(out, abi.Relationship{ID: r.ID, Name: r.Name, Peer: r.Source})
			}
		}
		return out, true
	}
	for _, r := range t.Out {
		if (name == "" || r.Name == name) && s.peer(r.Target) {
			out = append(out, abi.Relationship{ID: r.ID, Name: r.Name, Peer: r.Target})
		}
	}
	return out, true
}

func (s snapState) Query(ctx context.Context, text string) ([]byte, error) {
	opts := query.Options{PageSize: query.MaxPageSize}
	if vis := s.visible; vis != nil {
		opts.Visible = func(t query.Twin) bool { return vis(t.ID(), t.Model()) }
	}
	res, err := query.Run(ctx, graphquery.Wrap(s.snap), text, opts)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, r := range res.Rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(r)
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}
