package natslog

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// MaxTokenLen is the longest subject token EncodeToken produces. Stream names
// whose escaped form would be longer are hashed instead, which keeps every
// publish well inside the server's default 4 KiB control-line limit and the
// per-subject index small.
const MaxTokenLen = 200

// Token forms. The escaped form only ever contains [A-Za-z0-9-] and "_XX"
// escapes with two upper-case hex digits, so the two special forms below,
// which start with "_" followed by something other than two hex digits, can
// never collide with it.
const (
	emptyToken  = "_"  // the empty stream name
	hashedToken = "_H" // prefix of the hashed form of a long stream name
)

// ErrHashedToken is returned by DecodeToken for the token of a stream name
// too long to encode reversibly. The name itself is still stored in every
// event, so nothing is lost; only the subject does not spell it.
var ErrHashedToken = errors.New("natslog: hashed subject token")

// errBadToken is returned by DecodeToken for a string EncodeToken never
// produces.
var errBadToken = errors.New("natslog: malformed subject token")

const upperHex = "0123456789ABCDEF"

// EncodeToken maps a stream name to a single valid NATS subject token.
//
// Bytes in [A-Za-z0-9-] are kept; every other byte (including ".", "*", ">",
// "_", "/", space and each byte of a multi-byte UTF-8 character) becomes "_"
// and two upper-case hex digits, so "twin/a.b" becomes "twin_2Fa_2Eb". The
// mapping is injective and DecodeToken reverses it. The empty name becomes
// "_", and a name whose escaped form exceeds MaxTokenLen becomes "_H" followed
// by the unpadded base64url SHA-256 of the name (collision-resistant, not
// reversible).
func EncodeToken(stream string) string {
	if stream == "" {
		return emptyToken
	}
	n := 0
	for i := 0; i < len(stream); i++ {
		if plain(stream[i]) {
			n++
		} else {
			n += 3
		}
	}
	if n == len(stream) {
		if n > MaxTokenLen {
			return hashToken(stream)
		}
		return stream
	}
	if n > MaxTokenLen {
		return hashToken(stream)
	}
	b := make([]byte, 0, n)
	for i := 0; i < len(stream); i++ {
		c := stream[i]
		if plain(c) {
			b = append(b, c)
		} else {
			b = append(b, '_', upperHex[c>>4], upperHex[c&0xf])
		}
	}
	return string(b)
}

func hashToken(stream string) string {
	sum := sha256.Sum256([]byte(stream))
	return hashedToken + base64.RawURLEncoding.EncodeToString(sum[:])
}

// DecodeToken reverses EncodeToken. It returns ErrHashedToken for the hashed
// form of a long name, and an error for any string EncodeToken cannot produce.
func DecodeToken(tok string) (string, error) {
	switch {
	case tok == emptyToken:
		return "", nil
	case strings.HasPrefix(tok, hashedToken):
		return "", ErrHashedToken
	case tok == "" || len(tok) > MaxTokenLen:
		return "", errBadToken
	}
	b := make([]byte, 0, len(tok))
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case plain(c):
			b = append(b, c)
		case c == '_' && i+2 < len(tok) && isUpperHex(tok[i+1]) && isUpperHex(tok[i+2]):
			v := unhex(tok[i+1])<<4 | unhex(tok[i+2])
			if plain(v) {
				return "", errBadToken // not canonical: EncodeToken keeps it as is
			}
			b = append(b, v)
			i += 2
		default:
			return "", errBadToken
		}
	}
	return string(b), nil
}

// plain reports whether c stands for itself in a token.
func plain(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-'
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'A' + 10
}

// validToken reports whether tok is a literal NATS subject token: non-empty,
// no separators, whitespace or control bytes, and not a wildcard.
func validToken(tok string) bool {
	if tok == "" || tok == "*" || tok == ">" {
		return false
	}
	for i := 0; i < len(tok); i++ {
		switch c := tok[i]; {
		case c == '.', c == '*', c == '>', c <= ' ', c == 0x7f:
			return false
		}
	}
	return true
}

// validSubject reports whether s is a literal NATS subject: dot-separated
// valid tokens.
func validSubject(s string) bool {
	for _, tok := range strings.Split(s, ".") {
		if !validToken(tok) {
			return false
		}
	}
	return true
}
