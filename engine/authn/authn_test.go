package authn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/twinlog/twinlog/engine"
	"github.com/twinlog/twinlog/engine/authn"
	"github.com/twinlog/twinlog/engine/eventlog/memlog"
)

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// JWKS returns the JWKS document of the given keys by kid.
func JWKS(keys map[string]any) []byte {
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	for kid, k := range keys {
		switch k := k.(type) {
		case *rsa.PublicKey:
			set.Keys = append(set.Keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
		case *ecdsa.PublicKey:
			set.Keys = append(set.Keys, map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(k.X.FillBytes(make([]byte, 32))), "y": b64(k.Y.FillBytes(make([]byte, 32)))})
		}
	}
	b, _ := json.Marshal(set)
	return b
}

func sign(t *testing.T, m jwt.SigningMethod, kid string, key any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	dir := t.TempDir()
	file := filepath.Join(dir, "jwks.json")
	os.WriteFile(file, JWKS(map[string]any{"r1": &rsaKey.PublicKey}), 0o600)
	fetches := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches++
		w.Write(JWKS(map[string]any{"e1": &ecKey.PublicKey}))
	}))
	defer srv.Close()
	secret := []byte("0123456789abcdef0123456789abcdef")
	v, err := authn.NewVerifier(authn.Config{
		Issuers: []*authn.Issuer{
			{Issuer: "https://file.example", JWKSFile: file},
			{Issuer: "https://url.example", JWKSURL: srv.URL, GroupsClaim: "roles"},
			{Issuer: "dev", HS256Secret: secret},
		},
		Audience: "twinlog",
		Now:      func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	claims := func(iss string, mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": iss, "sub": "alice", "aud": "twinlog", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "groups": []string{"ops"}, "roles": "admins"}
		if mod != nil {
			mod(c)
		}
		return c
	}
	tests := []struct {
		name   string
		tok    string
		groups []string
		ok     bool
	}{
		{"rs256 file", sign(t, jwt.SigningMethodRS256, "r1", rsaKey, claims("https://file.example", nil)), []string{"ops"}, true},
		{"es256 url", sign(t, jwt.SigningMethodES256, "e1", ecKey, claims("https://url.example", nil)), []string{"admins"}, true},
		{"hs256 dev", sign(t, jwt.SigningMethodHS256, "", secret, claims("dev", nil)), []string{"ops"}, true},
		{"within skew", sign(t, jwt.SigningMethodHS256, "", secret, claims("dev", func(c jwt.MapClaims) { c["exp"] = now.Add(-30 * time.Second).Unix() })), []string{"ops"}, true},
		{"expired", sign(t, jwt.SigningMethodHS256, "", secret, claims("dev", func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Minute).Unix() })), nil, false},
		{"no exp", sign(t, jwt.SigningMethodHS256, "", secret, claims("dev", func(c jwt.MapClaims) { delete(c, "exp") })), nil, false},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, "", secret, claims("dev", func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })), nil, false},
		{"wrong audience", sign(t, jwt.SigningMethodHS256, "", secret, claims("dev", func(c jwt.MapClaims) { c["aud"] = "other" })), nil, false},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, "", secret, claims("https://evil.example", nil)), nil, false},
		{"no sub", sign(t, jwt.SigningMethodHS256, "", secret, claims("dev", func(c jwt.MapClaims) { delete(c, "sub") })), nil, false},
		{"wrong key", sign(t, jwt.SigningMethodRS256, "r1", otherRSA, claims("https://file.example", nil)), nil, false},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, "r9", rsaKey, claims("https://file.example", nil)), nil, false},
		{"hs256 from rsa issuer", sign(t, jwt.SigningMethodHS256, "r1", secret, claims("https://file.example", nil)), nil, false},
		{"none alg", sign(t, jwt.SigningMethodNone, "", jwt.UnsafeAllowNoneSignatureType, claims("dev", nil)), nil, false},
		{"garbage", "not.a.jwt", nil, false},
	}
	for _, tc := range tests {
		p, err := v.Verify(context.Background(), tc.tok)
		if !tc.ok {
			if !errors.Is(err, authn.ErrToken) {
				t.Errorf("%s: err %v, want ErrToken", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if p.Subject != "user:alice" || !slices.Equal(p.Groups, tc.groups) || p.Superuser {
			t.Errorf("%s: principal %+v", tc.name, p)
		}
	}
	if fetches > 2 {
		t.Errorf("JWKS URL fetched %d times, want at most 2 (refresh is rate-limited)", fetches)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []authn.Config{
		{Issuers: []*authn.Issuer{{Issuer: "x", HS256Secret: make([]byte, 32)}}},
		{Issuers: []*authn.Issuer{{Issuer: "x"}}, Audience: "a"},
		{Issuers: []*authn.Issuer{{Issuer: "x", HS256Secret: []byte("short")}}, Audience: "a"},
		{Issuers: []*authn.Issuer{{HS256Secret: make([]byte, 32)}}, Audience: "a"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: valid, want an error", c)
		}
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	log := memlog.New(memlog.Options{})
	k := authn.NewKeys()
	eng, err := engine.New(log, engine.Options{}, k)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer eng.Stop()
	ki, key, err := k.Create(ctx, eng, "user:root", "sensor gateway")
	if err != nil {
		t.Fatal(err)
	}
	p, err := k.Verify(key)
	if err != nil || p.Subject != "apikey:"+ki.ID {
		t.Fatalf("verify: %+v %v", p, err)
	}
	for _, bad := range []string{key + "x", key[:len(key)-1], authn.KeyPrefix + ki.ID, authn.KeyPrefix + "nope_secret", "tlk_"} {
		if _, err := k.Verify(bad); !errors.Is(err, authn.ErrToken) {
			t.Errorf("verify %q: %v, want ErrToken", bad, err)
		}
	}
	list := k.List()
	if len(list) != 1 || list[0].Hash != "" || list[0].Name != "sensor gateway" {
		t.Fatalf("list %+v", list)
	}
	// The log holds the hash, never the key.
	evs, _ := log.Read(ctx, 1, 10)
	for _, e := range evs {
		if secret := key[len(key)-20:]; strings.Contains(string(e.Payload), secret) {
			t.Fatal("the key is stored in the log")
		}
	}
	if err := k.Revoke(ctx, eng, "user:root", ki.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(key); !errors.Is(err, authn.ErrToken) {
		t.Fatalf("revoked key verifies: %v", err)
	}
	if err := k.Revoke(ctx, eng, "user:root", "nope"); engine.AsError(err).Kind != engine.KindNotFound {
		t.Fatalf("revoke unknown: %v", err)
	}
	// Restart: the keys replay from the log.
	k2 := authn.NewKeys()
	if err := k2.Replay(ctx, log, eng.Applied()); err != nil {
		t.Fatal(err)
	}
	if l := k2.List(); len(l) != 1 || !l[0].Revoked {
		t.Fatalf("replayed %+v", l)
	}
}

// TestVerifyCacheExpires checks that a remembered token is refused once it
// expires.
func TestVerifyCacheExpires(t *testing.T) {
	clock := now
	secret := []byte("0123456789abcdef0123456789abcdef")
	v, err := authn.NewVerifier(authn.Config{Issuers: []*authn.Issuer{{Issuer: "dev", HS256Secret: secret}},
		Audience: "twinlog", ClockSkew: time.Second, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodHS256, "", secret, jwt.MapClaims{"iss": "dev", "sub": "a", "aud": "twinlog", "exp": now.Add(time.Minute).Unix()})
	for range 2 {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	clock = now.Add(2 * time.Minute)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, authn.ErrToken) {
		t.Fatalf("expired remembered token: %v, want ErrToken", err)
	}
}
