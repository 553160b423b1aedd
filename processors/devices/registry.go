package devices

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
	"github.com/twinlog/twinlog/engine/twins"
)

// Stream and event types of the registry in the log.
const (
	// Stream is the log stream holding every registry change.
	Stream = "devices"
	// TypePut records a device's whole record (create or update).
	TypePut = "device.put"
	// TypeDeleted records a device's removal.
	TypeDeleted = "device.deleted"
	// SchemaVersion is the payload version of both types.
	SchemaVersion uint16 = 1
)

// Device is one registered device. The key hash never leaves the package.
type Device struct {
	// ID is the device id, the MQTT username of the device.
	ID string `json:"deviceId"`
	// TwinID is the twin mirroring the device. Default: the device id.
	TwinID string `json:"twinId"`
	// ModelID is the DTMI of the twin's model, "" until the device
	// announces it (or it is given at registration).
	ModelID string `json:"modelId,omitempty"`
	// Provisioned says the twin has been created for the device.
	Provisioned bool `json:"provisioned"`
	// Created and Updated are log times (RFC 3339).
	Created string `json:"createdTime,omitempty"`
	Updated string `json:"lastUpdatedTime,omitempty"`

	salt, hash []byte
}

// record is the payload of TypePut.
type record struct {
	ID          string `json:"id"`
	TwinID      string `json:"twin"`
	ModelID     string `json:"model,omitempty"`
	Provisioned bool   `json:"provisioned,omitempty"`
	Salt        []byte `json:"salt"`
	Hash        []byte `json:"hash"`
	Created     int64  `json:"created,omitempty"`
}

// Errors, as *engine.Error so the HTTP edge maps them.
var (
	errNotFound = func(id string) error {
		return engine.Errorf(engine.KindNotFound, "DeviceNotFound", "device %s is not registered", id)
	}
)

// Options configures a Registry. The zero value is valid.
type Options struct {
	// CommandTimeout is how long Invoke waits for a device's response when
	// the caller gives no timeout. Default 30 s.
	CommandTimeout time.Duration
	// MaxCommandTimeout bounds a caller's timeout. Default 5 min.
	MaxCommandTimeout time.Duration
	// Logger receives reports. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports invalid options.
func (o *Options) Validate() error {
	if o.CommandTimeout < 0 || o.MaxCommandTimeout < 0 {
		return errors.New("devices: negative timeout")
	}
	return nil
}

func (o *Options) defaults() {
	if o.CommandTimeout == 0 {
		o.CommandTimeout = 30 * time.Second
	}
	if o.MaxCommandTimeout == 0 {
		o.MaxCommandTimeout = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Registry is the device registry. It is safe for concurrent use.
type Registry struct {
	log   eventlog.Log
	twins *twins.Service
	opts  Options

	wmu sync.Mutex // serializes writes

	mu struct {
		sync.RWMutex
		version uint64 // position of the last applied registry event
		devices map[string]*Device
		byTwin  map[string]string // twin id → device id
		sender  CommandSender
		// revoked are devices deleted or given a new key by the events
		// applied last, to disconnect once the lock is released.
		revoked      []string
		disconnector Disconnector
	}
	cmds commands
}

// Open reads the registry from the log. tw creates and patches the
// devices' twins.
func Open(ctx context.Context, log eventlog.Log, tw *twins.Service, opts Options) (*Registry, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.defaults()
	r := &Registry{log: log, twins: tw, opts: opts}
	r.mu.devices = map[string]*Device{}
	r.mu.byTwin = map[string]string{}
	r.cmds.waiting = map[string]chan Response{}
	if err := r.catchUp(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// catchUp applies registry events after the applied version.
func (r *Registry) catchUp(ctx context.Context) error {
	for {
		r.mu.RLock()
		from := r.mu.version + 1
		r.mu.RUnlock()
		evs, err := r.log.ReadStream(ctx, Stream, from, 1024)
		if err != nil {
			return fmt.Errorf("read device registry: %w", err)
		}
		if len(evs) == 0 {
			return nil
		}
		r.mu.Lock()
		for i := range evs {
			if err = r.applyLocked(&evs[i]); err != nil {
				break
			}
		}
		revoked, d := r.mu.revoked, r.mu.disconnector
		r.mu.revoked = nil
		r.mu.Unlock()
		if d != nil {
			for _, id := range revoked {
				d.DisconnectDevice(id)
			}
		}
		if err != nil {
			return err
		}
	}
}

func (r *Registry) applyLocked(ev *event.Event) error {
	switch ev.Type {
	case TypePut:
		var rec record
		if err := json.Unmarshal(ev.Payload, &rec); err != nil {
			return fmt.Errorf("decode %s at %d: %w", ev.Type, ev.Position, err)
		}
		if old, ok := r.mu.devices[rec.ID]; ok {
			if r.mu.byTwin[old.TwinID] == rec.ID {
				delete(r.mu.byTwin, old.TwinID)
			}
			if !bytes.Equal(old.hash, rec.Hash) || !bytes.Equal(old.salt, rec.Salt) {
				r.mu.revoked = append(r.mu.revoked, rec.ID)
			}
		}
		d := &Device{ID: rec.ID, TwinID: rec.TwinID, ModelID: rec.ModelID, Provisioned: rec.Provisioned,
			salt: rec.Salt, hash: rec.Hash, Updated: ev.Timestamp().Format(time.RFC3339Nano)}
		if rec.Created != 0 {
			d.Created = time.Unix(0, rec.Created).UTC().Format(time.RFC3339Nano)
		}
		r.mu.devices[rec.ID] = d
		r.mu.byTwin[rec.TwinID] = rec.ID
	case TypeDeleted:
		var rec record
		if err := json.Unmarshal(ev.Payload, &rec); err != nil {
			return fmt.Errorf("decode %s at %d: %w", ev.Type, ev.Position, err)
		}
		if old, ok := r.mu.devices[rec.ID]; ok {
			if r.mu.byTwin[old.TwinID] == rec.ID {
				delete(r.mu.byTwin, old.TwinID)
			}
			delete(r.mu.devices, rec.ID)
			r.mu.revoked = append(r.mu.revoked, rec.ID)
		}
	}
	r.mu.version = ev.Position
	return nil
}

// write appends one registry event decided by fn against current state,
// retrying after catching up when another writer got there first.
func (r *Registry) write(ctx context.Context, actor string, fn func() (typ string, rec *record, err error)) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	for attempt := 0; ; attempt++ {
		typ, rec, err := fn()
		if err != nil || rec == nil {
			return err
		}
		payload, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		r.mu.RLock()
		ver := r.mu.version
		r.mu.RUnlock()
		_, err = r.log.Append(ctx, []event.Event{{Stream: Stream, Type: typ, Actor: actor, SchemaVersion: SchemaVersion, Payload: payload}},
			eventlog.Expect{Stream: Stream, Version: ver})
		if errors.Is(err, eventlog.ErrConflict) && attempt < 16 {
			if err := r.catchUp(ctx); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("append %s: %w", typ, err)
		}
		return r.catchUp(ctx)
	}
}

func (r *Registry) recordOf(d *Device) *record {
	rec := &record{ID: d.ID, TwinID: d.TwinID, ModelID: d.ModelID, Provisioned: d.Provisioned, Salt: d.salt, Hash: d.hash}
	if d.Created != "" {
		if t, err := time.Parse(time.RFC3339Nano, d.Created); err == nil {
			rec.Created = t.UnixNano()
		}
	}
	return rec
}

// Get returns a copy of a device's record.
func (r *Registry) Get(id string) (Device, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.mu.devices[id]
	if !ok {
		return Device{}, false
	}
	return *d, true
}

// List returns every device, by id.
func (r *Registry) List() []Device {
	r.mu.RLock()
	out := make([]Device, 0, len(r.mu.devices))
	for _, d := range r.mu.devices {
		out = append(out, *d)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Device) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// TwinOf returns the twin of a provisioned device. It implements
// ingest.Devices.
func (r *Registry) TwinOf(deviceID string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.mu.devices[deviceID]
	if !ok || !d.Provisioned {
		return "", false
	}
	return d.TwinID, true
}

// DeviceOf returns the device a twin mirrors.
func (r *Registry) DeviceOf(twinID string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	id, ok := r.mu.byTwin[twinID]
	return id, ok
}

// Authenticate reports whether key is the device's current key.
func (r *Registry) Authenticate(id string, key []byte) bool {
	r.mu.RLock()
	d, ok := r.mu.devices[id]
	var salt, hash []byte
	if ok {
		salt, hash = d.salt, d.hash
	}
	r.mu.RUnlock()
	if !ok || len(hash) == 0 {
		return false
	}
	got := hashKey(salt, key)
	return subtle.ConstantTimeCompare(got, hash) == 1
}

func hashKey(salt, key []byte) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write(key)
	return h.Sum(nil)
}

// newKey returns a fresh key (base64url of 32 random bytes), its salt and
// hash.
func newKey() (key string, salt, hash []byte) {
	var raw [32]byte
	rand.Read(raw[:])
	key = base64.RawURLEncoding.EncodeToString(raw[:])
	salt = make([]byte, 16)
	rand.Read(salt)
	return key, salt, hashKey(salt, []byte(key))
}

// maxIDBytes bounds device ids. They are MQTT topic levels: no '/', '+',
// '#' and no control characters.
const maxIDBytes = 256

func checkID(id string) error {
	if id == "" || len(id) > maxIDBytes || strings.ContainsAny(id, "/+#") || strings.HasPrefix(id, "$") {
		return engine.Errorf(engine.KindInvalid, "InvalidArgument", "device id %q is not valid: 1 to %d bytes, no '/', '+', '#', not starting with '$'", id, maxIDBytes)
	}
	for _, c := range id {
		if c < 0x20 || c == 0x7f {
			return engine.Errorf(engine.KindInvalid, "InvalidArgument", "device id %q has a control character", id)
		}
	}
	return nil
}

// PutRequest is the body of a device registration.
type PutRequest struct {
	// TwinID is the twin mirroring the device. Default: the device id.
	TwinID string `json:"twinId,omitempty"`
	// ModelID, when set, creates the twin with this model now (if it does
	// not exist). Otherwise the device announces its model later.
	ModelID string `json:"modelId,omitempty"`
}

// Put registers a device or updates its twin and model. A new device gets
// a key, returned only here (created reports it). An existing device keeps
// its key.
func (r *Registry) Put(ctx context.Context, actor, id string, req PutRequest) (d Device, key string, created bool, err error) {
	if err := checkID(id); err != nil {
		return Device{}, "", false, err
	}
	if req.TwinID == "" {
		req.TwinID = id
	}
	if req.ModelID != "" {
		if err := r.ensureTwin(ctx, actor, req.TwinID, req.ModelID); err != nil {
			return Device{}, "", false, err
		}
	}
	err = r.write(ctx, actor, func() (string, *record, error) {
		r.mu.RLock()
		cur, exists := r.mu.devices[id]
		other, taken := r.mu.byTwin[req.TwinID]
		var nd Device
		if exists {
			nd = *cur
		}
		r.mu.RUnlock()
		if taken && other != id {
			return "", nil, engine.Errorf(engine.KindConflict, "DeviceTwinConflict", "twin %s already mirrors device %s", req.TwinID, other)
		}
		created = !exists
		nd.ID = id
		if nd.TwinID != req.TwinID {
			nd.Provisioned = false
			nd.TwinID = req.TwinID
		}
		if req.ModelID != "" {
			nd.ModelID, nd.Provisioned = req.ModelID, true
		}
		if created {
			key, nd.salt, nd.hash = newKey()
			nd.Created = time.Now().UTC().Format(time.RFC3339Nano)
		}
		return TypePut, r.recordOf(&nd), nil
	})
	if err != nil {
		return Device{}, "", false, err
	}
	d, _ = r.Get(id)
	return d, key, created, nil
}

// RegenerateKey replaces a device's key and returns the new one; the old
// one stops working at once: new connections are refused, and the
// Disconnector closes the open ones before RegenerateKey returns.
func (r *Registry) RegenerateKey(ctx context.Context, actor, id string) (string, error) {
	var key string
	err := r.write(ctx, actor, func() (string, *record, error) {
		d, ok := r.Get(id)
		if !ok {
			return "", nil, errNotFound(id)
		}
		key, d.salt, d.hash = newKey()
		return TypePut, r.recordOf(&d), nil
	})
	return key, err
}

// Delete removes a device. Its twin stays; the Disconnector closes its
// connections before Delete returns.
func (r *Registry) Delete(ctx context.Context, actor, id string) error {
	return r.write(ctx, actor, func() (string, *record, error) {
		if _, ok := r.Get(id); !ok {
			return "", nil, errNotFound(id)
		}
		return TypeDeleted, &record{ID: id}, nil
	})
}

// Provision makes sure the device's twin exists with model (creating it
// when missing) and records the model. It is what a device announcing its
// model id triggers; it is idempotent. A twin that exists with another
// model is refused with code ModelMismatch.
func (r *Registry) Provision(ctx context.Context, id, model string) (Device, error) {
	d, ok := r.Get(id)
	if !ok {
		return Device{}, errNotFound(id)
	}
	if d.Provisioned && d.ModelID == model {
		return d, nil
	}
	actor := "device:" + id
	if err := r.ensureTwin(ctx, actor, d.TwinID, model); err != nil {
		return Device{}, err
	}
	err := r.write(ctx, actor, func() (string, *record, error) {
		cur, ok := r.Get(id)
		if !ok {
			return "", nil, errNotFound(id)
		}
		if cur.Provisioned && cur.ModelID == model {
			return "", nil, nil
		}
		cur.ModelID, cur.Provisioned = model, true
		return TypePut, r.recordOf(&cur), nil
	})
	if err != nil {
		return Device{}, err
	}
	d, _ = r.Get(id)
	return d, nil
}

// ensureTwin creates twin with model unless it exists; an existing twin
// must have that model.
func (r *Registry) ensureTwin(ctx context.Context, actor, twin, model string) error {
	snap := r.twins.Graph().Snapshot()
	if t, ok := snap.Twin(twin); ok {
		if t.Model != model {
			return engine.Errorf(engine.KindConflict, "ModelMismatch", "twin %s has model %s, not %s", twin, t.Model, model)
		}
		return nil
	}
	itf, ok := snap.Models().Get(model)
	if !ok {
		return engine.Errorf(engine.KindNotFound, "ModelNotFound", "model %s is not loaded", model)
	}
	doc := map[string]any{"$metadata": map[string]any{"$model": model}}
	for name := range itf.Components() {
		doc[name] = map[string]any{"$metadata": map[string]any{}}
	}
	body, _ := json.Marshal(doc)
	_, _, err := r.twins.PutTwin(ctx, actor, twin, body, twins.Cond{IfNoneMatchAny: true})
	if e := engine.AsError(err); err != nil && e.Kind == engine.KindPrecondition {
		// Created concurrently: check its model.
		if t, ok := r.twins.Graph().Snapshot().Twin(twin); ok && t.Model != model {
			return engine.Errorf(engine.KindConflict, "ModelMismatch", "twin %s has model %s, not %s", twin, t.Model, model)
		}
		return nil
	}
	return err
}
