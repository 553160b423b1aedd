package simulate

import (
	"context"
	"fmt"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/processors/handlers"
)

// handlers resolves the handlers req runs into the deployments to make in
// the branch, in order. It changes nothing.
func (s *Simulator) handlers(ctx context.Context, req Request) ([]handlers.Deployment, error) {
	if !req.DeployedHandlers && len(req.Handlers) == 0 {
		return nil, nil
	}
	var recorded []handlers.Deployment
	needRecorded := req.DeployedHandlers
	for _, h := range req.Handlers {
		needRecorded = needRecorded || h.Manifest == nil
	}
	if needRecorded {
		var err error
		if recorded, err = handlers.Deployments(ctx, s.log, 0, s.opts.ModuleDir); err != nil {
			return nil, fmt.Errorf("read handler deployments: %w", err)
		}
	}
	var out []handlers.Deployment
	if req.DeployedHandlers {
		for _, d := range recorded {
			if d.Live {
				out = append(out, d)
			}
		}
	}
	for i, h := range req.Handlers {
		switch {
		case h.Manifest != nil:
			if h.Name != "" || h.Version != "" {
				return nil, invalid("handler %d: give either a name (and version) of a deployed handler or a manifest and module, not both", i)
			}
			if len(h.Module) == 0 {
				return nil, invalid("handler %d: a manifest needs its module", i)
			}
			if err := h.Manifest.Validate(); err != nil {
				return nil, err
			}
			out = append(out, handlers.Deployment{Manifest: *h.Manifest, Module: h.Module})
		case h.Name == "":
			return nil, invalid("handler %d: give the name (and version) of a deployed handler, or a manifest and module", i)
		default:
			if len(h.Module) > 0 {
				return nil, invalid("handler %d: a module needs its manifest", i)
			}
			d, ok := pick(recorded, h.Name, h.Version)
			if !ok {
				v := "its live version"
				if h.Version != "" {
					v = "version " + h.Version
				}
				return nil, engine.Errorf(engine.KindNotFound, "HandlerNotFound", "handler %d: %s of handler %s was never deployed or is no longer live", i, v, h.Name)
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// pick returns the live deployment named name, or with a version, its
// newest deployment of that version.
func pick(ds []handlers.Deployment, name, version string) (handlers.Deployment, bool) {
	for i := len(ds) - 1; i >= 0; i-- {
		d := ds[i]
		if d.Manifest.Name != name {
			continue
		}
		if version == "" && d.Live || version != "" && d.Manifest.Version == version {
			return d, true
		}
	}
	return handlers.Deployment{}, false
}

// startHandlers starts the branch's handler manager and deploys ds into
// the branch's log: they handle every event fed to the branch afterwards.
func (b *Branch) startHandlers(ctx context.Context, s *Simulator, actor string, ds []handlers.Deployment) error {
	m, err := handlers.New(b.eng, b.twins, handlers.Options{Host: s.host, Logger: s.opts.Logger})
	if err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		m.Close()
		return fmt.Errorf("start branch handlers: %w", err)
	}
	b.handlers = m
	for _, d := range ds {
		if _, err := m.Deploy(ctx, actor, d.Manifest, d.Module); err != nil {
			return fmt.Errorf("deploy %s in the branch: %w", d.Manifest.String(), err)
		}
	}
	return nil
}

// settle waits until the branch has applied everything written to it and,
// when it runs handlers, until they have handled it all, cascades
// included: the head no longer moves once every handler is idle at it.
func (b *Branch) settle(ctx context.Context) error {
	for {
		head, err := b.log.Head(ctx)
		if err != nil {
			return err
		}
		if err := b.eng.WaitApplied(ctx, head); err != nil {
			return err
		}
		if b.handlers == nil {
			return nil
		}
		if err := b.handlers.WaitIdle(ctx, head); err != nil {
			return err
		}
		after, err := b.log.Head(ctx)
		if err != nil {
			return err
		}
		if after == head {
			return nil
		}
	}
}
