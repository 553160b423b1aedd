package handlers

import (
	"context"
	"fmt"

	"github.com/twinlog/twinlog/engine/eventlog"
)

// Deployment is one handler deployment recorded in a log, with its module.
type Deployment struct {
	// Position is the deployment event's position.
	Position uint64
	// Manifest is the manifest as deployed; a deployment without a version
	// has the event's id as its version, as the manager gives it.
	Manifest Manifest
	Module   []byte
	// Live is set on the current deployment of each handler that is
	// neither disabled nor deleted at the position read to.
	Live bool
}

// Deployments reads the handler deployments of log up to position to
// (every one when to is 0), oldest first, loading modules kept by digest
// from moduleDir (Options.ModuleDir). It runs nothing: a simulation uses it
// to run a log's handlers, or earlier versions of them, elsewhere.
func Deployments(ctx context.Context, log eventlog.Log, to uint64, moduleDir string) ([]Deployment, error) {
	var out []Deployment
	current := map[string]int{} // name → index in out of its live deployment
	for from := uint64(0); ; {
		batch, err := log.ReadStream(ctx, Stream, from, 1024)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", Stream, err)
		}
		if len(batch) == 0 {
			break
		}
		for i := range batch {
			e := &batch[i]
			if to != 0 && e.Position > to {
				return out, nil
			}
			switch e.Type {
			case TypeDeployed:
				var d Deployed
				if err := decode(e, &d); err != nil {
					return nil, err
				}
				if len(d.Module) == 0 {
					if d.Module, err = loadModule(moduleDir, d.SHA256); err != nil {
						return nil, fmt.Errorf("handler %s deployed at %d: %w", d.Manifest.Name, e.Position, err)
					}
				}
				if d.Manifest.Version == "" {
					d.Manifest.Version = e.ID()
				}
				if j, ok := current[d.Manifest.Name]; ok {
					out[j].Live = false
				}
				current[d.Manifest.Name] = len(out)
				out = append(out, Deployment{Position: e.Position, Manifest: d.Manifest, Module: d.Module, Live: true})
			case TypeDisabled, TypeDeleted:
				var ref Ref
				if err := decode(e, &ref); err != nil {
					return nil, err
				}
				if j, ok := current[ref.Name]; ok {
					out[j].Live = false
					delete(current, ref.Name)
				}
			}
		}
		from = batch[len(batch)-1].Position + 1
	}
	return out, nil
}
