package authn_test

import (
	"context"
	"testing"
	"time"

	"github.com/twinlog/twinlog/engine/authn"
)

func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"b","crv":"P-256","x":"AAAA","y":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := authn.ParseJWKS(b)
		if err != nil && keys != nil {
			t.Fatal("keys returned with an error")
		}
	})
}

// FuzzVerify feeds arbitrary tokens to the issuer and key selection around
// the JWT library: none may verify, and none may panic.
func FuzzVerify(f *testing.F) {
	v, err := authn.NewVerifier(authn.Config{
		Issuers:  []*authn.Issuer{{Issuer: "dev", HS256Secret: []byte("0123456789abcdef0123456789abcdef")}},
		Audience: "twinlog",
		Now:      func() time.Time { return now },
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJkZXYifQ.x")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		if _, err := v.Verify(context.Background(), tok); err == nil {
			t.Fatalf("forged token %q verified", tok)
		}
	})
}
