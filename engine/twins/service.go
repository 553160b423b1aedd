package twins

import (
	"context"
	"errors"

	"strings"
	"time"
	"unicode/utf8"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/projections/twingraph"
	"github.com/twinlog/twinlog/schemas/dtdl"
)

// Options configures a Service. The zero value gives ADT's limits.
type Options struct {
	// MaxTwinBytes bounds the JSON body of a twin or relationship PUT or
	// PATCH, and of telemetry. Default 32 KiB (ADT).
	MaxTwinBytes int
	// MaxStringBytes bounds each string value, in UTF-8 bytes. Default 4 KiB (ADT).
	MaxStringBytes int
	// MaxNameBytes bounds property names and map keys. Default 1 KiB (ADT).
	MaxNameBytes int
	// MaxModelsPerCall bounds the models of one AddModels. Default 250 (ADT).
	MaxModelsPerCall int
	// MaxIDBytes bounds twin and relationship ids. Default 1 KiB.
	MaxIDBytes int
	// MaxWriteBatch bounds how many concurrent twin patches, to distinct
	// twins, are decided and appended together as one command. 1 disables
	// combining. Default 512.
	MaxWriteBatch int
	// EnforceWritable refuses writes to properties not declared writable.
	// ADT accepts writable but does not enforce it. Default false.
	EnforceWritable bool
}

// Validate reports invalid options.
func (o *Options) Validate() error {
	if o.MaxTwinBytes < 0 || o.MaxStringBytes < 0 || o.MaxNameBytes < 0 || o.MaxModelsPerCall < 0 || o.MaxIDBytes < 0 || o.MaxWriteBatch < 0 {
		return errors.New("twins: negative limit")
	}
	return nil
}

func (o *Options) defaults() {
	if o.MaxTwinBytes == 0 {
		o.MaxTwinBytes = 32 << 10
	}
	if o.MaxStringBytes == 0 {
		o.MaxStringBytes = 4 << 10
	}
	if o.MaxNameBytes == 0 {
		o.MaxNameBytes = 1 << 10
	}
	if o.MaxModelsPerCall == 0 {
		o.MaxModelsPerCall = 250
	}
	if o.MaxWriteBatch == 0 {
		o.MaxWriteBatch = 512
	}
	if o.MaxIDBytes == 0 {
		o.MaxIDBytes = 1 << 10
	}
}

// Cond carries a request's preconditions.
type Cond struct {
	// IfMatch is the If-Match header: "" (none), "*" (must exist), or one
	// or more comma-separated ETags, one of which must match.
	IfMatch string
	// IfNoneMatchAny is If-None-Match: * (must not exist; create only).
	IfNoneMatchAny bool
}

// Service is the twin domain service: validated writes as engine commands,
// reads from graph snapshots. Reads after an acknowledged write see it.
// All methods are safe for concurrent use; every error is an *engine.Error.
type Service struct {
	eng    *engine.Engine
	g      *twingraph.Graph
	opts   Options
	writes combiner
}

// New returns a service writing through eng and reading g, which must be
// one of eng's projections.
func New(eng *engine.Engine, g *twingraph.Graph, opts Options) *Service {
	opts.defaults()
	s := &Service{eng: eng, g: g, opts: opts}
	s.writes.eng, s.writes.g, s.writes.max = eng, g, opts.MaxWriteBatch
	return s
}

// Graph returns the graph the service reads.
func (s *Service) Graph() *twingraph.Graph { return s.g }

func (s *Service) execute(ctx context.Context, cmd engine.CommandFunc) (engine.Result, error) {
	if c, ok := causeOf(ctx); ok {
		decide := cmd
		cmd = func(ctx context.Context) (engine.Decision, error) {
			d, err := decide(ctx)
			for i := range d.Events {
				c.stamp(&d.Events[i])
			}
			return d, err
		}
	}
	r, err := s.eng.Execute(ctx, cmd)
	if err != nil {
		return r, engine.AsError(err)
	}
	return r, nil
}

// Error constructors for the ADT codes.

func invalid(code, format string, args ...any) *engine.Error {
	return engine.Errorf(engine.KindInvalid, code, format, args...)
}

func validationFailed(format string, args ...any) *engine.Error {
	return invalid("ValidationFailed", format, args...)
}

func twinNotFound(id string) *engine.Error {
	return engine.Errorf(engine.KindNotFound, "DigitalTwinNotFound", "There is no digital twin instance that exists with the ID %s.", id)
}

func relNotFound(src, id string) *engine.Error {
	return engine.Errorf(engine.KindNotFound, "RelationshipNotFound", "There is no relationship %s on digital twin %s.", id, src)
}

func modelNotFound(id string) *engine.Error {
	return engine.Errorf(engine.KindNotFound, "ModelNotFound", "There is no model %s.", id)
}

func preconditionFailed(format string, args ...any) *engine.Error {
	return engine.Errorf(engine.KindPrecondition, "PreconditionFailed", format, args...)
}

func patchInvalid(err error) *engine.Error {
	return &engine.Error{Kind: engine.KindInvalid, Code: "JsonPatchInvalid", Message: err.Error()}
}

func tooLarge(what string, n, max int) *engine.Error {
	return engine.Errorf(engine.KindTooLarge, "PayloadTooLarge", "%s of %d bytes exceeds the limit of %d bytes", what, n, max)
}

// checkCond applies If-Match / If-None-Match to an entity that exists (with
// etag) or not.
func checkCond(c Cond, exists bool, etagPos uint64) error {
	if c.IfNoneMatchAny && exists {
		return preconditionFailed("If-None-Match: * but the entity already exists")
	}
	if c.IfMatch == "" {
		return nil
	}
	if !exists {
		return preconditionFailed("If-Match given but the entity does not exist")
	}
	// The ETag is formatted only when there is one to compare.
	etag := twingraph.ETag(etagPos)
	for _, m := range strings.Split(c.IfMatch, ",") {
		m = strings.TrimSpace(m)
		if m == "*" || m == etag || "W/"+m == etag {
			return nil
		}
	}
	return preconditionFailed("If-Match %s does not match the current ETag %s", c.IfMatch, etag)
}

func (s *Service) checkID(kind, id string) error {
	if id == "" {
		return invalid("InvalidArgument", "the %s id is empty", kind)
	}
	if len(id) > s.opts.MaxIDBytes {
		return invalid("InvalidArgument", "the %s id is longer than %d bytes", kind, s.opts.MaxIDBytes)
	}
	if !utf8.ValidString(id) || strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return invalid("InvalidArgument", "the %s id %q contains invalid characters", kind, id)
	}
	return nil
}

// checkLimits walks a value and enforces the string and name limits.
func (s *Service) checkLimits(name string, v any) error {
	switch x := v.(type) {
	case string:
		if len(x) > s.opts.MaxStringBytes {
			return validationFailed("property %s: string of %d bytes exceeds the limit of %d bytes", name, len(x), s.opts.MaxStringBytes)
		}
	case []any:
		for _, e := range x {
			if err := s.checkLimits(name, e); err != nil {
				return err
			}
		}
	case map[string]any:
		for k, e := range x {
			if len(k) > s.opts.MaxNameBytes {
				return validationFailed("property %s: name of %d bytes exceeds the limit of %d bytes", name, len(k), s.opts.MaxNameBytes)
			}
			if err := s.checkLimits(name+"."+k, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkProperty validates a property value against its declaration.
func (s *Service) checkProperty(c *dtdl.Content, name string, v any) error {
	if len(name) > s.opts.MaxNameBytes {
		return validationFailed("property name of %d bytes exceeds the limit of %d bytes", len(name), s.opts.MaxNameBytes)
	}
	if err := s.checkLimits(name, v); err != nil {
		return err
	}
	if s.opts.EnforceWritable && !c.Writable {
		return validationFailed("property %s is not writable", name)
	}
	if v == nil {
		return validationFailed("property %s: null is not a valid value; remove the property instead", name)
	}
	if err := c.Schema.Validate(v); err != nil {
		return validationFailed("property %s: %v", name, err)
	}
	return nil
}

func checkSourceTime(v any) (string, error) {
	st, ok := v.(string)
	if !ok {
		return "", validationFailed("sourceTime must be a string")
	}
	if _, err := time.Parse(time.RFC3339Nano, st); err != nil {
		return "", validationFailed("sourceTime %q is not an RFC 3339 date-time", st)
	}
	return st, nil
}
