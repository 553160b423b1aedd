package authn

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/twinlog/twinlog/engine/authz"
)

// Issuer is one trusted token issuer.
type Issuer struct {
	// Issuer is the exact "iss" claim. Required.
	Issuer string
	// JWKSFile or JWKSURL supply the issuer's RS256/ES256 keys. JWKSURL is
	// fetched on first use and again (at most once a minute) when a token
	// names an unknown key id.
	JWKSFile, JWKSURL string
	// HS256Secret verifies HS256 tokens; for development only.
	HS256Secret []byte
	// GroupsClaim names the claim listing the subject's groups. Default
	// "groups".
	GroupsClaim string

	mu struct {
		sync.Mutex
		keys    map[string]crypto.PublicKey
		fetched time.Time
	}
}

// Config configures a Verifier. Zero values mean the defaults.
type Config struct {
	// Issuers are the trusted issuers; a token from any other is refused.
	Issuers []*Issuer
	// Audience is the required "aud" value. Required when Issuers is set.
	Audience string
	// ClockSkew is the leeway for exp, nbf and iat. Default 1 minute.
	ClockSkew time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// HTTPClient fetches JWKS URLs. Default a client with a 10 s timeout.
	HTTPClient *http.Client
}

// Validate reports an unusable configuration.
func (c *Config) Validate() error {
	if len(c.Issuers) > 0 && c.Audience == "" {
		return errors.New("authn: an audience is required with issuers")
	}
	for _, is := range c.Issuers {
		if is.Issuer == "" {
			return errors.New("authn: an issuer needs its iss value")
		}
		if is.JWKSFile == "" && is.JWKSURL == "" && len(is.HS256Secret) == 0 {
			return fmt.Errorf("authn: issuer %q needs a JWKS file or URL or an HS256 secret", is.Issuer)
		}
		if len(is.HS256Secret) > 0 && len(is.HS256Secret) < 32 {
			return fmt.Errorf("authn: issuer %q: the HS256 secret must be at least 32 bytes", is.Issuer)
		}
	}
	return nil
}

// Verifier verifies bearer JWTs. It is safe for concurrent use.
//
// A token that verified is remembered until it expires, so that a client
// sending the same token with every request pays for one signature check;
// the memory is bounded by forgetting everything when it is full.
type Verifier struct {
	cfg Config
	mu  struct {
		sync.Mutex
		seen map[string]verified
	}
}

type verified struct {
	p   authz.Principal
	exp time.Time
}

// maxVerified bounds the tokens a Verifier remembers.
const maxVerified = 4096

// NewVerifier returns a verifier for cfg.
func NewVerifier(cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	v := &Verifier{cfg: cfg}
	v.mu.seen = map[string]verified{}
	return v, nil
}

// ErrToken is wrapped by every verification failure.
var ErrToken = errors.New("authn: invalid token")

// Verify checks tok's signature, issuer, audience and times and returns
// its principal: Subject "user:<sub>", Groups from the issuer's groups
// claim.
func (v *Verifier) Verify(ctx context.Context, tok string) (authz.Principal, error) {
	if len(v.cfg.Issuers) == 0 {
		return authz.Principal{}, fmt.Errorf("%w: no token issuers are configured", ErrToken)
	}
	v.mu.Lock()
	hit, ok := v.mu.seen[tok]
	v.mu.Unlock()
	if ok {
		if v.cfg.Now().Before(hit.exp.Add(v.cfg.ClockSkew)) {
			return hit.p, nil
		}
		v.mu.Lock()
		delete(v.mu.seen, tok)
		v.mu.Unlock()
	}
	p, exp, err := v.verify(ctx, tok)
	if err != nil {
		return authz.Principal{}, err
	}
	v.mu.Lock()
	if len(v.mu.seen) >= maxVerified {
		clear(v.mu.seen)
	}
	v.mu.seen[tok] = verified{p: p, exp: exp}
	v.mu.Unlock()
	return p, nil
}

func (v *Verifier) verify(ctx context.Context, tok string) (authz.Principal, time.Time, error) {
	var iss *Issuer
	mc := jwt.MapClaims{}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256", "ES256", "HS256"}),
		jwt.WithAudience(v.cfg.Audience),
		jwt.WithLeeway(v.cfg.ClockSkew),
		jwt.WithTimeFunc(v.cfg.Now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	_, err := parser.ParseWithClaims(tok, mc, func(t *jwt.Token) (any, error) {
		name, err := t.Claims.GetIssuer()
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(v.cfg.Issuers, func(is *Issuer) bool { return is.Issuer == name })
		if i < 0 {
			return nil, fmt.Errorf("issuer %q is not trusted", name)
		}
		iss = v.cfg.Issuers[i]
		if t.Method.Alg() == "HS256" {
			if len(iss.HS256Secret) == 0 {
				return nil, errors.New("HS256 is not accepted from this issuer")
			}
			return iss.HS256Secret, nil
		}
		kid, _ := t.Header["kid"].(string)
		key, err := v.key(ctx, iss, kid)
		if err != nil {
			return nil, err
		}
		return key, nil
	})
	if err != nil {
		return authz.Principal{}, time.Time{}, fmt.Errorf("%w: %v", ErrToken, err)
	}
	sub, _ := mc.GetSubject()
	if sub == "" {
		return authz.Principal{}, time.Time{}, fmt.Errorf("%w: no sub claim", ErrToken)
	}
	p := authz.Principal{Subject: "user:" + sub}
	gc := iss.GroupsClaim
	if gc == "" {
		gc = "groups"
	}
	switch g := mc[gc].(type) {
	case []any:
		for _, x := range g {
			if s, ok := x.(string); ok && s != "" {
				p.Groups = append(p.Groups, s)
			}
		}
	case string:
		if g != "" {
			p.Groups = []string{g}
		}
	}
	exp, err := mc.GetExpirationTime()
	if err != nil || exp == nil {
		return authz.Principal{}, time.Time{}, fmt.Errorf("%w: no exp claim", ErrToken)
	}
	return p, exp.Time, nil
}

// key returns iss's key kid, loading or refreshing its JWKS when needed.
func (v *Verifier) key(ctx context.Context, iss *Issuer, kid string) (crypto.PublicKey, error) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	if k, ok := lookup(iss.mu.keys, kid); ok {
		return k, nil
	}
	now := v.cfg.Now()
	if iss.mu.keys != nil && (iss.JWKSURL == "" || now.Sub(iss.mu.fetched) < time.Minute) {
		return nil, fmt.Errorf("unknown key id %q", kid)
	}
	b, err := v.loadJWKS(ctx, iss)
	if err != nil {
		return nil, err
	}
	keys, err := ParseJWKS(b)
	if err != nil {
		return nil, err
	}
	iss.mu.keys, iss.mu.fetched = keys, now
	if k, ok := lookup(keys, kid); ok {
		return k, nil
	}
	return nil, fmt.Errorf("unknown key id %q", kid)
}

// lookup finds kid, or the only key when the token names none.
func lookup(keys map[string]crypto.PublicKey, kid string) (crypto.PublicKey, bool) {
	if k, ok := keys[kid]; ok {
		return k, true
	}
	if kid == "" && len(keys) == 1 {
		for _, k := range keys {
			return k, true
		}
	}
	return nil, false
}

func (v *Verifier) loadJWKS(ctx context.Context, iss *Issuer) ([]byte, error) {
	if iss.JWKSFile != "" {
		b, err := os.ReadFile(iss.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("read JWKS: %w", err)
		}
		return b, nil
	}
	if iss.JWKSURL == "" {
		return nil, errors.New("the issuer has no JWKS")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, iss.JWKSURL, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	return b, nil
}
