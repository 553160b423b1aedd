// Package authn establishes who a caller is: it verifies bearer JWTs
// against configured issuers (RS256 and ES256 keys from a JWKS file or URL,
// or an HS256 shared secret for development), and API keys created, listed
// and revoked through the API and kept in the log only as hashes.
//
// It answers with an authz.Principal; what that principal may do is
// engine/authz's decision. Signature and claim validation is delegated to
// github.com/golang-jwt/jwt/v5, a small, widely reviewed library with no
// dependencies of its own; this package owns the issuer allow-list, key
// selection and the JWKS parsing (fuzzed).
package authn
