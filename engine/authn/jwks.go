package authn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// ErrJWKS is wrapped by JWKS parsing errors.
var ErrJWKS = errors.New("authn: bad JWKS")

// maxJWKSBytes bounds a JWKS document.
const maxJWKSBytes = 1 << 20

// ParseJWKS parses a JSON Web Key Set (RFC 7517) and returns its signing
// keys by key id: RSA keys (at least 2048 bits) and EC keys on P-256.
// Keys of other types or uses are skipped; a malformed RSA or EC key is an
// error.
func ParseJWKS(b []byte) (map[string]crypto.PublicKey, error) {
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrJWKS, maxJWKSBytes)
	}
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			N   string `json:"n"`
			E   string `json:"e"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJWKS, err)
	}
	keys := map[string]crypto.PublicKey{}
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch k.Kty {
		case "RSA":
			n, err1 := b64int(k.N)
			e, err2 := b64int(k.E)
			if err1 != nil || err2 != nil || n.BitLen() < 2048 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
				return nil, fmt.Errorf("%w: key %d (%q): bad RSA modulus or exponent", ErrJWKS, i, k.Kid)
			}
			keys[k.Kid] = &rsa.PublicKey{N: n, E: int(e.Int64())}
		case "EC":
			if k.Crv != "P-256" {
				continue
			}
			x, err1 := b64int(k.X)
			y, err2 := b64int(k.Y)
			if err1 != nil || err2 != nil || x.BitLen() > 256 || y.BitLen() > 256 {
				return nil, fmt.Errorf("%w: key %d (%q): bad EC point", ErrJWKS, i, k.Kid)
			}
			// Encode as an uncompressed point so that ecdh checks it is
			// on the curve.
			pt := make([]byte, 65)
			pt[0] = 4
			x.FillBytes(pt[1:33])
			y.FillBytes(pt[33:])
			if _, err := ecdhP256(pt); err != nil {
				return nil, fmt.Errorf("%w: key %d (%q): point not on P-256", ErrJWKS, i, k.Kid)
			}
			keys[k.Kid] = &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
		}
	}
	return keys, nil
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("empty")
	}
	return new(big.Int).SetBytes(b), nil
}
