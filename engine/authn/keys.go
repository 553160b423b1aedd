package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/authz"
	"github.com/twinlog/twinlog/engine/event"
	"github.com/twinlog/twinlog/engine/eventlog"
)

// KeyStream holds every API key event.
const KeyStream = "apikeys"

// API key event types; payloads are JSON at SchemaVersion.
const (
	TypeKeyCreated = "apikey.created" // KeyInfo with Hash
	TypeKeyRevoked = "apikey.revoked" // {"id": ...}
)

// SchemaVersion is the payload version of the API key events.
const SchemaVersion uint16 = 1

// KeyPrefix starts every API key: "tlk_<id>_<secret>".
const KeyPrefix = "tlk_"

// KeyInfo describes an API key. The secret is never stored: only its
// SHA-256 (the secret is 256 random bits, so a fast hash suffices).
type KeyInfo struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Hash      string `json:"hash,omitempty"`
	CreatedBy string `json:"createdBy,omitempty"`
	Created   int64  `json:"created,omitempty"`
	Revoked   bool   `json:"revoked,omitempty"`

	principal string // "apikey:<id>", kept for Verify
}

// Keys is the projection of API keys. Apply is called from one goroutine
// in log order; every other method is safe for concurrent use.
type Keys struct {
	mu struct {
		sync.RWMutex
		keys map[string]*KeyInfo
		pos  uint64
	}
	// gen counts the key events applied (see Generation).
	gen atomic.Uint64
}

var _ engine.Projection = (*Keys)(nil)

// NewKeys returns an empty key store.
func NewKeys() *Keys {
	k := &Keys{}
	k.mu.keys = map[string]*KeyInfo{}
	return k
}

// Apply implements engine.Projection.
func (k *Keys) Apply(batch []event.Event) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := range batch {
		e := &batch[i]
		if e.Position <= k.mu.pos {
			continue
		}
		k.mu.pos = e.Position
		if e.Stream != KeyStream {
			continue
		}
		if e.SchemaVersion != SchemaVersion {
			return fmt.Errorf("%s at %d: unknown schema version %d", e.Type, e.Position, e.SchemaVersion)
		}
		k.gen.Add(1)
		switch e.Type {
		case TypeKeyCreated:
			var ki KeyInfo
			if err := json.Unmarshal(e.Payload, &ki); err != nil {
				return fmt.Errorf("decode %s at %d: %w", e.Type, e.Position, err)
			}
			ki.CreatedBy, ki.Created, ki.Revoked = e.Actor, e.Time, false
			ki.principal = "apikey:" + ki.ID
			k.mu.keys[ki.ID] = &ki
		case TypeKeyRevoked:
			var ref struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(e.Payload, &ref); err != nil {
				return fmt.Errorf("decode %s at %d: %w", e.Type, e.Position, err)
			}
			if ki, ok := k.mu.keys[ref.ID]; ok {
				c := *ki
				c.Revoked = true
				k.mu.keys[ref.ID] = &c
			}
		}
	}
	return nil
}

// Replay applies the key events of log up to position to (see
// authz.Store.Replay).
func (k *Keys) Replay(ctx context.Context, log eventlog.Log, to uint64) error {
	for from := uint64(1); ; {
		evs, err := log.ReadStream(ctx, KeyStream, from, 1024)
		if err != nil {
			return fmt.Errorf("replay api keys: %w", err)
		}
		evs = slices.DeleteFunc(evs, func(e event.Event) bool { return e.Position > to })
		if len(evs) == 0 {
			k.mu.Lock()
			k.mu.pos = max(k.mu.pos, to)
			k.mu.Unlock()
			return nil
		}
		if err := k.Apply(evs); err != nil {
			return err
		}
		from = evs[len(evs)-1].Position + 1
	}
}

// List returns every key, revoked ones included, without hashes, by id.
func (k *Keys) List() []KeyInfo {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]KeyInfo, 0, len(k.mu.keys))
	for _, ki := range k.mu.keys {
		c := *ki
		c.Hash = ""
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b KeyInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Create appends a new key named name through eng and returns its info
// and the key itself, which is shown only this once.
func (k *Keys) Create(ctx context.Context, eng *engine.Engine, actor, name string) (KeyInfo, string, error) {
	var idb [8]byte
	var sec [32]byte
	rand.Read(idb[:])
	rand.Read(sec[:])
	id := hex.EncodeToString(idb[:])
	secret := base64.RawURLEncoding.EncodeToString(sec[:])
	ki := KeyInfo{ID: id, Name: name, Hash: hashSecret(secret)}
	b, err := json.Marshal(ki)
	if err != nil {
		return KeyInfo{}, "", err
	}
	ev := event.Event{Stream: KeyStream, Type: TypeKeyCreated, Actor: actor, SchemaVersion: SchemaVersion, Payload: b}
	if _, err := eng.Execute(ctx, engine.CommandFunc(func(context.Context) (engine.Decision, error) {
		return engine.Decision{Events: []event.Event{ev}}, nil
	})); err != nil {
		return KeyInfo{}, "", err
	}
	ki.Hash, ki.CreatedBy = "", actor
	return ki, KeyPrefix + id + "_" + secret, nil
}

// Revoke appends a revocation of key id through eng.
func (k *Keys) Revoke(ctx context.Context, eng *engine.Engine, actor, id string) error {
	_, err := eng.Execute(ctx, engine.CommandFunc(func(context.Context) (engine.Decision, error) {
		k.mu.RLock()
		ki, ok := k.mu.keys[id]
		k.mu.RUnlock()
		if !ok {
			return engine.Decision{}, engine.Errorf(engine.KindNotFound, "ApiKeyNotFound", "there is no API key %q", id)
		}
		if ki.Revoked {
			return engine.Decision{}, nil
		}
		b, _ := json.Marshal(map[string]string{"id": id})
		return engine.Decision{Events: []event.Event{{Stream: KeyStream, Type: TypeKeyRevoked, Actor: actor, SchemaVersion: SchemaVersion, Payload: b}}}, nil
	}))
	return err
}

// Generation changes whenever a key is created or revoked: a caller that
// remembers what Verify said of a key may trust it while Generation, read
// before the Verify, is unchanged.
func (k *Keys) Generation() uint64 { return k.gen.Load() }

// Verify returns the principal of an API key ("apikey:<id>"), or an error
// wrapping ErrToken when the key is unknown, revoked or wrong.
func (k *Keys) Verify(key string) (authz.Principal, error) {
	rest, ok := strings.CutPrefix(key, KeyPrefix)
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 {
		return authz.Principal{}, fmt.Errorf("%w: not an API key", ErrToken)
	}
	k.mu.RLock()
	ki, found := k.mu.keys[id]
	k.mu.RUnlock()
	// The hash is computed and compared in full either way: no early
	// answer for unknown ids. No allocation: this runs on every request.
	var sum [sha256.Size]byte
	if len(secret) <= 64 {
		// Keys made by Create have 43-byte secrets: hashed from the
		// stack, where []byte(secret) would be a heap copy.
		var buf [64]byte
		sum = sha256.Sum256(buf[:copy(buf[:], secret)])
	} else {
		sum = sha256.Sum256([]byte(secret))
	}
	var want [2 * sha256.Size]byte
	hex.Encode(want[:], sum[:])
	have := noKeyHash
	if found && len(ki.Hash) == len(want) {
		have = ki.Hash
	}
	var diff byte
	for i := range want {
		diff |= want[i] ^ have[i]
	}
	if !found || diff != 0 || ki.Revoked {
		return authz.Principal{}, fmt.Errorf("%w: the API key is not valid", ErrToken)
	}
	return authz.Principal{Subject: ki.principal}, nil
}

// noKeyHash is compared against for ids that have no key.
var noKeyHash = strings.Repeat("0", 2*sha256.Size)
